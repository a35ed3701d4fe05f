"""Model lists in the settings dialog: human names, what is not installed, Locate file, never saving a broken model.

A model that cannot load used to be chosen and saved silently: the next Start failed behind a banner while
the Live view said "Ready".
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtWidgets import QComboBox, QFileDialog, QPushButton

from app.context import AppContext
from app.main_window import MainWindow
from app.settings_dialog import DEBOUNCE_MS, SettingsDialog
from core import paths
from core.modelstore import ModelStore, get_model_spec
from core.settings import Settings

REPO = Path(__file__).resolve().parents[2]
SHIPPED_GHOSTFACENET = REPO / "core" / "weights" / "ghostfacenetv2.pt"


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    """A store that looks only in the (empty) user model folder, then the installed packages; no downloads."""
    return ModelStore([paths.models_dir()], allow_download=False, cache_folder=tmp_path / "model-cache")


def _dialog(
    qtbot, settings: Settings, store: ModelStore
) -> tuple[SettingsDialog, list[Settings], list[Settings]]:
    applied: list[Settings] = []
    saved: list[Settings] = []
    dialog = SettingsDialog(settings, save=saved.append, devices=["cpu"], store=store)
    qtbot.addWidget(dialog)
    dialog.settings_changed.connect(applied.append)
    dialog.show()
    return dialog, applied, saved


def _combo(dialog: SettingsDialog, name: str) -> QComboBox:
    combo = dialog.findChild(QComboBox, f"{name}.list")
    assert combo is not None
    return combo


def _labels(combo: QComboBox) -> list[str]:
    return [combo.itemText(i) for i in range(combo.count())]


def _choose(combo: QComboBox, spec: str) -> None:
    """What the user does: pick an entry of the list."""
    index = combo.findData(spec)
    assert index >= 0, (spec, _labels(combo))
    combo.setCurrentIndex(index)


def test_model_lists_come_from_the_registries_with_human_names_and_mark_what_is_missing(
    qtbot, store: ModelStore
) -> None:
    dialog, _, _ = _dialog(qtbot, Settings(), store)
    detectors, embedders = _combo(dialog, "detection.detector"), _combo(dialog, "recognition.embedder")
    assert _labels(detectors) == [
        "YuNet: fast, default",
        "RetinaFace MobileNet-0.25: more accurate (not installed)",
    ]
    assert _labels(embedders) == ["SFace: default", "GhostFaceNetV2 (ours)"]
    assert not detectors.isEditable() and not embedders.isEditable()
    locate = dialog.findChild(QPushButton, "detection.detector.locate")
    assert locate.text() == "Locate file…" and not locate.isEnabled()
    _choose(detectors, "retinaface-mnet025")
    assert locate.isEnabled()


def test_a_model_that_is_not_installed_is_never_applied_nor_saved(qtbot, store: ModelStore) -> None:
    dialog, applied, saved = _dialog(qtbot, Settings(), store)
    detectors = _combo(dialog, "detection.detector")
    _choose(detectors, "retinaface-mnet025")
    dialog.set_value("detection.min_face_px", 40)
    qtbot.waitUntil(lambda: bool(applied), timeout=2000)
    qtbot.wait(DEBOUNCE_MS * 2)
    # The other edit is live; the missing detector is not (the pipeline keeps the working one).
    assert applied[-1].detection.min_face_px == 40
    assert all(s.detection.detector == "yunet" for s in applied)
    assert dialog.error_label.isVisible() and "not installed" in dialog.error_label.text()

    dialog.accept()
    assert saved == [], "a model that cannot load was saved"
    assert dialog.isVisible(), "OK keeps the dialog open to say why"
    assert detectors.currentData() == "yunet", "the last working choice is back in the list"
    assert "Not saved" in dialog.error_label.text() and "stays YuNet" in dialog.error_label.text()

    dialog.accept()  # the other settings are not lost
    assert len(saved) == 1
    assert saved[0].detection.detector == "yunet" and saved[0].detection.min_face_px == 40


def test_a_missing_checkpoint_spec_is_marked_and_never_saved(
    qtbot, store: ModelStore, tmp_path: Path
) -> None:
    missing = tmp_path / "gone" / "best.pt"
    start = Settings().replace(recognition={"embedder": f"ghostfacenetv2:{missing}"})
    dialog, _, saved = _dialog(qtbot, start, store)
    embedders = _combo(dialog, "recognition.embedder")
    assert embedders.currentText() == "GhostFaceNetV2 (ours): best.pt (file not found)"
    dialog.accept()
    assert saved == []
    assert embedders.currentData() == "sface", "falls back on the first embedder that is installed"
    assert str(missing) in dialog.error_label.text()
    dialog.accept()
    assert [s.recognition.embedder for s in saved] == ["sface"]


def test_locate_file_installs_a_detector_through_the_model_store(
    qtbot, store: ModelStore, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dialog, applied, saved = _dialog(qtbot, Settings(), store)
    detectors = _combo(dialog, "detection.detector")
    _choose(detectors, "retinaface-mnet025")
    locate = dialog.findChild(QPushButton, "detection.detector.locate")

    # The wrong file is refused, and nothing changes.
    yunet = store.locate("yunet")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(yunet), ""))
    locate.click()
    assert "not used" in dialog.error_label.text() and "SHA-256" in dialog.error_label.text()
    assert store.locate("retinaface-mnet025") is None

    weights = models_dir / get_model_spec("retinaface-mnet025").filename
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(weights), ""))
    locate.click()
    assert store.locate("retinaface-mnet025") == paths.models_dir() / weights.name
    assert detectors.currentText() == "RetinaFace MobileNet-0.25: more accurate"
    qtbot.waitUntil(
        lambda: bool(applied) and applied[-1].detection.detector == "retinaface-mnet025", timeout=2000
    )
    dialog.accept()
    assert saved[-1].detection.detector == "retinaface-mnet025"


def test_locate_file_gives_the_embedder_a_name_path_spec(
    qtbot, store: ModelStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = Settings().replace(recognition={"embedder": f"ghostfacenetv2:{tmp_path / 'missing.pt'}"})
    dialog, _, saved = _dialog(qtbot, start, store)
    located = tmp_path / "mine.pt"
    shutil.copyfile(SHIPPED_GHOSTFACENET, located)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(located), ""))
    dialog.findChild(QPushButton, "recognition.embedder.locate").click()
    embedders = _combo(dialog, "recognition.embedder")
    assert embedders.currentData() == f"ghostfacenetv2:{located}"
    assert embedders.currentText() == "GhostFaceNetV2 (ours): mine.pt"
    dialog.accept()
    assert [s.recognition.embedder for s in saved] == [f"ghostfacenetv2:{located}"]


def test_a_model_that_cannot_load_is_the_live_views_state_not_ready(
    qtbot, hamilton_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "no-models"
    empty.mkdir()
    monkeypatch.setenv("GHOSTFACE_MODEL_PATH", str(empty))
    settings = Settings().replace(
        camera={"source": str(hamilton_clip)}, detection={"detector": "retinaface-mnet025"}
    )
    window = MainWindow(AppContext.build(settings, system_trash=False))
    qtbot.addWidget(window)
    window.show()
    title = window.live.empty_state.title
    window.start()
    qtbot.waitUntil(lambda: not window.controller.is_running(), timeout=30_000)
    qtbot.waitUntil(lambda: title.text() == "The models could not be loaded", timeout=5000)
    assert window.live.live_stack.currentWidget() is window.live.empty_state
    assert "retinaface-mnet025" in window.live.empty_state.message.text()
    assert not window.banner.isVisible(), "the view states the error; no banner over it"
    # Another detector is a new chance: the view is ready again.
    window.apply_settings(window.settings.replace(detection={"detector": "yunet"}))
    assert title.text() == "Ready"
    window.close()


def test_a_model_that_fails_in_the_running_app_is_taken_back_and_not_saved(
    qtbot, hamilton_clip: Path, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    settings_file = tmp_path / "settings.json"
    settings = Settings().replace(camera={"source": str(hamilton_clip)})
    window = MainWindow(
        AppContext.build(settings, system_trash=False, settings_path=settings_file), autostart=True
    )
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.video_view.frames_shown > 0, timeout=60_000)
    dialog = window.open_settings()
    dialog.set_value("recognition.embedder", f"ghostfacenetv2:{garbage}")
    embedders = _combo(dialog, "recognition.embedder")
    # The file is there, so only loading it tells: the pipeline fails, and the dialog takes it back.
    qtbot.waitUntil(lambda: embedders.currentData() == "sface", timeout=30_000)
    assert "could not be loaded" in dialog.error_label.text()
    assert "failed to load" in _labels(embedders)[-1]
    qtbot.waitUntil(lambda: window.controller.settings.recognition.embedder == "sface", timeout=5000)
    assert window.controller.is_running(), "the video goes on with the working model"
    dialog.accept()
    assert window.settings.recognition.embedder == "sface"
    assert '"sface"' in settings_file.read_text(encoding="utf-8")
    window.close()
