"""Face detectors on real photos: counts, landmark order, thresholds, scaling, cross-detector agreement."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from core.detection import Detector, create_detector, list_detectors, nms
from core.errors import ModelNotFoundError, UnknownModelError
from core.modelstore import ModelStore
from core.types import Detection

DETECTORS = list_detectors()


@pytest.fixture(scope="module")
def detectors() -> dict[str, Detector]:
    return {name: create_detector(name) for name in DETECTORS}


@pytest.fixture(scope="module")
def image(demo_dir: Path) -> Callable[[str], np.ndarray]:
    cache: dict[str, np.ndarray] = {}

    def load(name: str) -> np.ndarray:
        if name not in cache:
            img = cv2.imread(str(demo_dir / name))
            assert img is not None, name
            cache[name] = img
        return cache[name]

    return load


@pytest.fixture(scope="module")
def detect(detectors: dict[str, Detector], image: Callable[[str], np.ndarray]) -> Callable:
    """Memoised detection with the default settings, so each (detector, photo) pair runs once."""
    cache: dict[tuple[str, str], list[Detection]] = {}

    def run(detector: str, photo: str) -> list[Detection]:
        key = (detector, photo)
        if key not in cache:
            cache[key] = detectors[detector].detect(image(photo))
        return cache[key]

    return run


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _check_detection(d: Detection, shape: tuple[int, ...]) -> None:
    assert d.box.shape == (4,) and d.box.dtype == np.float32
    assert d.landmarks.shape == (5, 2) and d.landmarks.dtype == np.float32
    assert 0.0 <= d.score <= 1.0
    x1, y1, x2, y2 = d.box
    assert x2 - x1 > 20 and y2 - y1 > 20
    # Landmark order: image-left eye first, eyes above the nose, nose above the mouth.
    le, re, nose, lm, rm = d.landmarks
    assert le[0] < re[0] and lm[0] < rm[0]
    assert max(le[1], re[1]) < nose[1] < min(lm[1], rm[1])
    # Every landmark inside the (slightly grown) box.
    grow = 0.15 * (x2 - x1)
    assert np.all(d.landmarks[:, 0] > x1 - grow) and np.all(d.landmarks[:, 0] < x2 + grow)
    assert np.all(d.landmarks[:, 1] > y1 - grow) and np.all(d.landmarks[:, 1] < y2 + grow)


@pytest.mark.parametrize("name", DETECTORS)
def test_one_face_on_obama(name: str, detect: Callable, image: Callable) -> None:
    faces = detect(name, "obama.jpg")
    assert len(faces) == 1
    _check_detection(faces[0], image("obama.jpg").shape)
    assert faces[0].score >= 0.8


@pytest.mark.parametrize("name", DETECTORS)
def test_two_faces_on_two_people_sorted_by_score(name: str, detect: Callable, image: Callable) -> None:
    faces = detect(name, "two_people.jpg")
    assert len(faces) == 2
    for face in faces:
        _check_detection(face, image("two_people.jpg").shape)
    assert faces[0].score >= faces[1].score
    # One face on each half of the photo.
    centres = sorted(float(f.box[0] + f.box[2]) / 2 for f in faces)
    assert centres[0] < image("two_people.jpg").shape[1] / 2 < centres[1]


@pytest.mark.parametrize("name", DETECTORS)
def test_no_face_in_background_or_blank(name: str, detectors: dict[str, Detector], image: Callable) -> None:
    background = image("biden.jpg")[0:600, 0:350]  # curtain and wall, no face
    assert detectors[name].detect(np.ascontiguousarray(background)) == []
    assert detectors[name].detect(np.full((360, 640, 3), 127, np.uint8)) == []


@pytest.mark.parametrize("name", DETECTORS)
def test_score_threshold_is_live(name: str, detectors: dict[str, Detector], image: Callable) -> None:
    detector = detectors[name]
    before = detector.detect(image("two_people.jpg"))
    lowest = before[-1].score
    assert lowest < before[0].score, "need two different scores to test the threshold"
    try:
        detector.score_threshold = float(np.nextafter(np.float32(lowest), np.float32(1.0)))
        after = detector.detect(image("two_people.jpg"))
    finally:
        detector.score_threshold = 0.6
    assert 0 < len(after) < len(before)
    assert all(f.score >= lowest for f in after)
    with pytest.raises(ValueError):
        detector.score_threshold = 1.5


@pytest.mark.parametrize("name", DETECTORS)
def test_max_side_scales_results_back(name: str, detect: Callable, image: Callable) -> None:
    full = detect(name, "obama.jpg")[0]
    small = create_detector(name, max_side=320).detect(image("obama.jpg"))
    assert len(small) == 1
    assert _iou(full.box, small[0].box) > 0.75
    face_px = full.width
    assert np.abs(full.landmarks - small[0].landmarks).max() < 0.1 * face_px


@pytest.mark.parametrize("name", DETECTORS)
def test_grey_image_is_accepted_and_bad_input_rejected(
    name: str, detectors: dict[str, Detector], image: Callable
) -> None:
    grey = cv2.cvtColor(image("obama.jpg"), cv2.COLOR_BGR2GRAY)
    assert len(detectors[name].detect(grey)) == 1
    with pytest.raises(ValueError, match="uint8"):
        detectors[name].detect(image("obama.jpg").astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        detectors[name].detect(np.zeros((10, 10, 2), np.uint8))


@pytest.mark.parametrize("photo", ["obama.jpg", "two_people.jpg", "lin-manuel-miranda.png"])
def test_retinaface_agrees_with_yunet(photo: str, detect: Callable) -> None:
    reference = detect("yunet", photo)
    other = detect("retinaface-mnet025", photo)
    assert reference
    for face in reference:
        match = max(other, key=lambda d: _iou(face.box, d.box))
        assert _iou(face.box, match.box) >= 0.7
        # Measured on these photos: at most 7% of the face size (sqrt of box area) apart.
        size = float(np.sqrt(face.width * face.height))
        error = float(np.linalg.norm(face.landmarks - match.landmarks, axis=1).max())
        assert error <= 0.1 * size, f"landmarks {error:.1f} px apart on a {size:.0f} px face"


def test_unknown_detector_lists_known_names() -> None:
    with pytest.raises(UnknownModelError) as info:
        create_detector("nope")
    for name in DETECTORS:
        assert name in str(info.value)


def test_missing_retinaface_weights_give_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("GHOSTFACE_MODEL_PATH", str(empty))
    monkeypatch.setenv("GHOSTFACE_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as info:
        create_detector("retinaface-mnet025", store=ModelStore(allow_download=True))
    message = str(info.value)
    assert str(empty / "retinaface_mobilenet0.25.pth") in message
    assert "https://github.com/biubug6/Face-Detector-1MB-with-landmark" in message
    assert "GHOSTFACE_OFFLINE" in message


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only message")
def test_cuda_without_cuda_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="CUDA is not available"):
        create_detector("retinaface-mnet025", device="cuda")


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10.5]], np.float32)
    scores = np.array([0.8, 0.9, 0.5, 0.7], np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]
    assert nms(boxes, scores, 0.99).tolist() == [1, 0, 3, 2]
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5).tolist() == []


def test_defaults_and_live_settings_are_validated(detectors: dict[str, Detector]) -> None:
    assert detectors["yunet"].max_side is None
    # RetinaFace-mnet0.25 gives false faces on full-size photos; it detects at 640 px unless told otherwise.
    assert detectors["retinaface-mnet025"].max_side == 640
    assert create_detector("retinaface-mnet025", max_side=0).max_side is None
    detector = detectors["yunet"]
    detector.max_side = 0
    assert detector.max_side is None
    with pytest.raises(ValueError, match="max_side"):
        detector.max_side = 8
    with pytest.raises(ValueError, match="nms_threshold"):
        detector.nms_threshold = -0.1
    assert detector.name == detector.model_id == "yunet"


def test_retinaface_checkpoint_loading(models_dir: Path, tmp_path: Path, image: Callable) -> None:
    from core.detection.retinaface import RetinaFace, load_retinaface
    from core.errors import CheckpointError

    weights = models_dir / "retinaface_mobilenet0.25.pth"
    state = torch.load(weights, map_location="cpu", weights_only=True)
    reference = RetinaFace()
    reference.load_state_dict(state)
    reference.eval()
    # A DataParallel-style checkpoint (every key prefixed with "module.") loads the same.
    prefixed = tmp_path / "prefixed.pth"
    torch.save({"module." + k: v for k, v in state.items()}, prefixed)
    fused = load_retinaface(str(prefixed))
    crop = cv2.resize(image("obama.jpg"), (160, 200))
    x = torch.from_numpy(crop).permute(2, 0, 1)[None].float() - torch.tensor([104.0, 117.0, 123.0]).view(
        1, 3, 1, 1
    )
    with torch.inference_mode():
        for got, want in zip(fused(x), reference(x), strict=True):
            torch.testing.assert_close(got, want, atol=1e-3, rtol=1e-3)
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_retinaface(str(tmp_path / "junk.pth"))
    torch.save({"body.stage1.0.0.weight": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(CheckpointError, match="do not fit"):
        load_retinaface(str(tmp_path / "wrong.pth"))
