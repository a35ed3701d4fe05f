"""The one factory from settings to engine parts, and the one table of what a change rebuilds."""

from __future__ import annotations

from pathlib import Path

from core.engine import build_detector, build_embedder, configure_detector, gallery_root, open_gallery
from core.settings import REBUILD_FIELDS, Rebuild, Settings, rebuilds


def test_the_detector_follows_every_detection_setting() -> None:
    settings = Settings().replace(
        detection={"score_threshold": 0.7, "nms_threshold": 0.4, "max_side_px": 320}
    )
    detector = build_detector(settings)
    assert (detector.score_threshold, detector.nms_threshold, detector.max_side) == (0.7, 0.4, 320)
    # Evaluation keeps the model's own size (full size for YuNet), whatever the live resolution is.
    assert build_detector(settings, evaluation=True).max_side is None
    configure_detector(detector, settings.replace(detection={"max_side_px": 480, "score_threshold": 0.5}))
    assert (detector.score_threshold, detector.max_side) == (0.5, 480)


def test_the_gallery_uses_the_settings_folder_and_the_given_models(tmp_path: Path) -> None:
    settings = Settings().replace(gallery_dir=str(tmp_path / "people"))
    assert gallery_root(settings) == tmp_path / "people"
    assert gallery_root(Settings()).name == "gallery"
    detector, embedder = build_detector(settings), build_embedder(settings)
    gallery = open_gallery(settings, detector, embedder)
    try:
        assert gallery.root == (tmp_path / "people").resolve()
        assert gallery.detector is detector and gallery.embedder is embedder
    finally:
        gallery.close()


def test_what_a_change_rebuilds_is_read_from_the_fields() -> None:
    base = Settings()
    assert rebuilds(base, base) == frozenset()
    assert rebuilds(base, base.replace(camera={"source": "clip.mp4"})) == {Rebuild.SOURCE}
    assert rebuilds(base, base.replace(camera={"max_fps": 5.0})) == frozenset()
    assert rebuilds(base, base.replace(detection={"detector": "retinaface-mnet025"})) == {Rebuild.DETECTOR}
    assert rebuilds(base, base.replace(detection={"max_side_px": 320})) == frozenset()
    assert rebuilds(base, base.replace(recognition={"device": "cuda:0"})) == {
        Rebuild.DETECTOR,
        Rebuild.EMBEDDER,
    }
    assert rebuilds(base, base.replace(recognition={"margin": 0.2})) == frozenset()
    assert rebuilds(base, base.replace(gallery_dir="/elsewhere")) == {Rebuild.GALLERY}
    # Every part is declared by at least one field, and only real fields are in the table.
    assert {part for parts in REBUILD_FIELDS.values() for part in parts} == set(Rebuild)
    for path in REBUILD_FIELDS:
        value: object = base
        for name in path:
            value = getattr(value, name)
