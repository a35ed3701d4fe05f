"""GhostFaceNetV2's deployed form: ONNX through OpenCV DNN gives PyTorch's embeddings, and is verified."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from core import paths
from core.alignment import align_face
from core.detection import create_detector
from core.embedding.ghostface import GhostFaceEmbedder
from core.errors import CheckpointError
from core.ghostfacenet import GhostFaceNetV2, export_onnx
from core.modelstore import default_store, sha256_of


@pytest.fixture(scope="module")
def shipped() -> Path:
    path = default_store().locate("ghostfacenetv2")
    if path is None:
        pytest.skip("the shipped GhostFaceNetV2 checkpoint (core/weights/ghostfacenetv2.pt) is missing")
    return path


@pytest.fixture(scope="module")
def lfw_crops(lfw_dir: Path) -> np.ndarray:
    """200 aligned crops of LFW photos (evaluation data: only compared here, nothing is tuned on it)."""
    detector = create_detector("yunet")
    crops = []
    for photo in sorted(lfw_dir.glob("*/*.jpg"))[::20]:
        image = cv2.imread(str(photo))
        faces = detector.detect(image)
        if faces:
            crops.append(align_face(image, max(faces, key=lambda f: f.width * f.height).landmarks))
        if len(crops) == 200:
            break
    assert len(crops) == 200
    return np.stack(crops)


def test_deployed_embeddings_match_pytorch_on_200_lfw_crops(shipped: Path, lfw_crops: np.ndarray) -> None:
    deployed = GhostFaceEmbedder(shipped)
    eager = GhostFaceEmbedder(shipped, runtime="torch")
    assert deployed.runtime == "opencv-dnn" and eager.runtime == "pytorch"
    assert deployed.model_id == eager.model_id  # the same model for the gallery cache
    for flip in (False, True):
        cos = (deployed.embed(lfw_crops, flip=flip) * eager.embed(lfw_crops, flip=flip)).sum(1)
        assert cos.min() >= 0.999, f"flip={flip}: lowest cosine {cos.min():.5f}"


def test_deployed_file_is_made_once_and_reused(shipped: Path) -> None:
    first = GhostFaceEmbedder(shipped)
    assert first.deployed_path is not None and first.deployed_path.parent == paths.cache_dir() / "models"
    stamp = first.deployed_path.stat().st_mtime_ns
    second = GhostFaceEmbedder(shipped)
    assert second.deployed_path == first.deployed_path
    assert second.deployed_path.stat().st_mtime_ns == stamp


def test_a_swapped_deployed_file_is_rebuilt_not_run(shipped: Path, lfw_crops: np.ndarray) -> None:
    """A valid ONNX file with other weights in the cache must not run under the checkpoint's name."""
    honest = GhostFaceEmbedder(shipped)
    expected = honest.embed(lfw_crops[:8])
    path = honest.deployed_path
    assert path is not None
    export_onnx(GhostFaceNetV2(), path)  # random weights, same shapes: OpenCV would load it happily
    reloaded = GhostFaceEmbedder(shipped)
    assert reloaded.runtime == "opencv-dnn"
    np.testing.assert_allclose(reloaded.embed(lfw_crops[:8]), expected, atol=1e-5)
    assert Path(f"{path}.sha256").read_text().strip() == sha256_of(path)


def test_an_undeployable_model_falls_back_to_pytorch_or_fails_when_asked(
    shipped: Path, lfw_crops: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    # The cache's models folder is a file: the export cannot be written.
    (paths.cache_dir()).mkdir(parents=True, exist_ok=True)
    (paths.cache_dir() / "models").write_text("not a folder")
    with caplog.at_level(logging.WARNING):
        fallback = GhostFaceEmbedder(shipped)
    assert fallback.runtime == "pytorch" and fallback.deployed_path is None
    assert "runs in PyTorch" in caplog.text
    reference = GhostFaceEmbedder(shipped, runtime="torch").embed(lfw_crops[:4])
    np.testing.assert_allclose(fallback.embed(lfw_crops[:4]), reference, atol=1e-6)
    with pytest.raises(CheckpointError, match="cannot deploy"):
        GhostFaceEmbedder(shipped, runtime="opencv")


def test_two_threads_loading_the_model_at_once_both_get_the_deployed_form(shipped: Path) -> None:
    """The app's live and gallery workers build the embedder at the same moment."""
    import threading

    runtimes: list[str] = []
    start = threading.Barrier(2)

    def load() -> None:
        start.wait()
        runtimes.append(GhostFaceEmbedder(shipped).runtime)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert runtimes == ["opencv-dnn", "opencv-dnn"]
