"""Embedders on real aligned faces: SFace through OpenCV, GhostFaceNetV2 checkpoints, the registry."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from core import paths
from core.alignment import align_face
from core.detection import create_detector
from core.embedding import Embedder, create_embedder, list_embedders, parse_spec
from core.errors import CheckpointError, ModelNotFoundError, UnknownModelError
from core.ghostfacenet import GhostFaceNetV2, save_backbone
from core.modelstore import ModelSpec, ModelStore, default_store

# OpenCV Zoo's published cosine threshold for SFace ("same person" above it).
SFACE_COSINE_THRESHOLD = 0.363


@pytest.fixture(scope="module")
def module_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private GHOSTFACE_HOME for module-scoped objects (they are built before the per-test one)."""
    home = tmp_path_factory.mktemp("embedding-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GHOSTFACE_HOME", str(home))
        yield home


@pytest.fixture(scope="module")
def faces(demo_dir: Path, module_home: Path) -> dict[str, np.ndarray]:
    """Aligned 112x112 BGR crops of the largest face in each photo, through the real detector."""
    detector = create_detector("yunet")
    crops = {}
    for name in ("obama", "obama2", "biden"):
        image = cv2.imread(str(demo_dir / f"{name}.jpg"))
        assert image is not None, name
        detections = detector.detect(image)
        assert detections, f"no face found in {name}.jpg"
        best = max(detections, key=lambda d: d.width * d.height)
        crops[name] = align_face(image, best.landmarks)
    return crops


@pytest.fixture(scope="module")
def batch(faces: dict[str, np.ndarray]) -> np.ndarray:
    return np.stack([faces["obama"], faces["obama2"], faces["biden"]])


@pytest.fixture(scope="module")
def sface(module_home: Path) -> Embedder:
    return create_embedder("sface")


@pytest.fixture(scope="module")
def ghost_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = GhostFaceNetV2()
    with torch.no_grad():  # calibrate BN statistics as a (very short) training run would
        model(torch.randn(4, 3, 112, 112))
    return save_backbone(model.eval(), tmp_path_factory.mktemp("ckpt") / "random.pt", {"note": "random init"})


# ---------------------------------------------------------------------------------------------------
# Contract of every registered embedder


def _available(name: str) -> str:
    if name == "ghostfacenetv2" and default_store().locate("ghostfacenetv2") is None:
        pytest.skip("the shipped GhostFaceNetV2 checkpoint (core/weights/ghostfacenetv2.pt) is not built yet")
    return name


@pytest.mark.parametrize("name", list_embedders())
def test_registered_embedder_contract(name: str, batch: np.ndarray, module_home: Path) -> None:
    embedder = create_embedder(_available(name))
    assert embedder.name == name
    prefix, _, digest = embedder.model_id.partition("@")
    assert prefix == name and len(digest) == 12
    assert hashlib.sha256(embedder.model_path.read_bytes()).hexdigest().startswith(digest)
    assert embedder.device == "cpu"
    assert isinstance(embedder.preprocessing_version, int)
    out = embedder.embed(batch)
    assert out.shape == (3, embedder.dim) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(embedder.embed(batch), out)  # deterministic
    assert embedder.embed(batch[:0]).shape == (0, embedder.dim)
    assert embedder.embed([]).shape == (0, embedder.dim)


# ---------------------------------------------------------------------------------------------------
# SFace


def test_thousands_of_crops_are_embedded_in_bounded_calls(
    sface: Embedder, train_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # OpenCV DNN killed the process (SIGSEGV) when an evaluation handed it ~3,000 crops plus mirrors at
    # once; embed() now cuts such a request into calls of at most MAX_BATCH crops.
    from core.embedding import _base

    files = sorted((train_dir / "celeba").glob("*/*.jpg"))[:300]
    crops = np.stack([cv2.imread(str(f)) for f in files])
    sizes: list[int] = []
    forward = sface._forward

    def recorded(batch_bgr: np.ndarray) -> np.ndarray:
        sizes.append(len(batch_bgr))
        return forward(batch_bgr)

    monkeypatch.setattr(sface, "_forward", recorded)
    together = sface.embed(crops, flip=True)
    assert sizes and max(sizes) <= _base.MAX_BATCH and sum(sizes) == 2 * len(crops)
    sizes.clear()
    plain = sface.embed(crops)
    assert max(sizes) <= _base.MAX_BATCH and sum(sizes) == len(crops)
    # Same embeddings as one crop at a time, in the same order.
    for i in (0, 63, 64, 65, 299):
        alone = sface.embed(crops[i : i + 1], flip=True)[0]
        assert float(together[i] @ alone) > 0.9999
        assert float(plain[i] @ sface.embed(crops[i : i + 1])[0]) > 0.9999


def test_sface_tells_obama_from_biden(sface: Embedder, faces: dict[str, np.ndarray]) -> None:
    emb = sface.embed(np.stack([faces["obama"], faces["obama2"], faces["biden"]]))
    same = float(emb[0] @ emb[1])
    different = max(float(emb[0] @ emb[2]), float(emb[1] @ emb[2]))
    assert same > SFACE_COSINE_THRESHOLD > different
    assert same - different > 0.3


def test_sface_is_128_d_and_keyed_by_its_file(sface: Embedder) -> None:
    assert sface.dim == 128
    assert sface.model_id == "sface@fb143eea0783"  # the pinned SHA-256 of the OpenCV Zoo int8bq file


def test_sface_batch_equals_one_at_a_time(sface: Embedder, batch: np.ndarray) -> None:
    together = sface.embed(batch)
    singles = np.concatenate([sface.embed(batch[i : i + 1]) for i in range(len(batch))])
    np.testing.assert_allclose(together, singles, atol=1e-5)
    np.testing.assert_allclose(sface.embed(list(batch)), together, atol=1e-6)


def test_sface_matches_opencv_face_recognizer(sface: Embedder, batch: np.ndarray) -> None:
    # FaceRecognizerSF.feature is OpenCV's own preprocessing (RGB, 0..255); it reads the cleaned copy.
    recognizer = cv2.FaceRecognizerSF.create(str(sface.cleaned_model_path), "")
    ours = sface.embed(batch)
    for crop, emb in zip(batch, ours, strict=True):
        ref = recognizer.feature(crop).reshape(-1)
        assert float(emb @ (ref / np.linalg.norm(ref))) > 0.9999


def test_flip_embedding_is_normalised_differs_and_is_mirror_symmetric(
    sface: Embedder, batch: np.ndarray
) -> None:
    plain = sface.embed(batch)
    flipped = sface.embed(batch, flip=True)
    np.testing.assert_allclose(np.linalg.norm(flipped, axis=1), 1.0, atol=1e-5)
    cos = np.sum(plain * flipped, axis=1)
    assert np.all(cos < 0.9999) and np.all(cos > 0.9)
    # original + mirror is the same sum whichever of the two is given
    mirrored = np.ascontiguousarray(batch[:, :, ::-1])
    np.testing.assert_allclose(sface.embed(mirrored, flip=True), flipped, atol=1e-5)


def test_sface_cleaned_model_is_cached_and_rebuilt_when_damaged(module_home: Path) -> None:
    first = create_embedder("sface")
    cleaned = first.cleaned_model_path
    assert cleaned.is_file() and cleaned.parent == paths.cache_dir() / "models"
    mtime = cleaned.stat().st_mtime_ns
    create_embedder("sface")
    assert cleaned.stat().st_mtime_ns == mtime  # reused, not rewritten
    cleaned.write_bytes(b"garbage")
    again = create_embedder("sface")
    assert again.cleaned_model_path.stat().st_size > 1000
    crop = np.full((1, 112, 112, 3), 128, np.uint8)
    np.testing.assert_allclose(again.embed(crop), first.embed(crop), atol=1e-6)


def test_sface_is_safe_to_call_from_several_threads(sface: Embedder, batch: np.ndarray) -> None:
    expected = [sface.embed(batch[i : i + 1]) for i in range(3)]
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(3):
                results[i] = sface.embed(batch[i % 3 : i % 3 + 1])
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i, got in results.items():
        np.testing.assert_allclose(got, expected[i % 3], atol=1e-5)


@pytest.mark.parametrize(
    ("crops", "match"),
    [
        (np.zeros((112, 112, 3), np.uint8), "one image"),
        (np.zeros((2, 100, 100, 3), np.uint8), r"\(N, 112, 112, 3\)"),
        (np.zeros((2, 112, 112), np.uint8), r"\(N, 112, 112, 3\)"),
        (np.zeros((2, 112, 112, 3), np.float32), "uint8"),
        ([np.zeros((112, 112, 3), np.uint8), np.zeros((64, 64, 3), np.uint8)], "crop 1"),
    ],
)
def test_bad_crops_are_a_clear_error(sface: Embedder, crops: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        sface.embed(crops)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------
# GhostFaceNetV2


def test_ghostfacenet_checkpoint_through_the_spec(ghost_checkpoint: Path, batch: np.ndarray) -> None:
    embedder = create_embedder(f"ghostfacenetv2:{ghost_checkpoint}")
    assert embedder.dim == 512 and embedder.device == "cpu"
    assert embedder.model_path == ghost_checkpoint
    digest = hashlib.sha256(ghost_checkpoint.read_bytes()).hexdigest()
    assert embedder.model_id == f"ghostfacenetv2@{digest[:12]}"
    out = embedder.embed(batch)
    assert out.shape == (3, 512) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    singles = np.concatenate([embedder.embed(batch[i : i + 1]) for i in range(3)])
    np.testing.assert_allclose(out, singles, atol=1e-4)
    flipped = embedder.embed(batch, flip=True)
    np.testing.assert_allclose(np.linalg.norm(flipped, axis=1), 1.0, atol=1e-5)
    assert np.all(np.sum(out * flipped, axis=1) < 0.9999)


def test_ghostfacenet_preprocessing_is_rgb_scaled_to_plus_minus_one(
    ghost_checkpoint: Path, batch: np.ndarray
) -> None:
    embedder = create_embedder(f"ghostfacenetv2:{ghost_checkpoint}")
    model = embedder.network
    rgb = batch[..., ::-1].astype(np.float32)
    x = torch.from_numpy((rgb - 127.5) / 127.5).permute(0, 3, 1, 2).contiguous()
    with torch.inference_mode():
        ref = model(x).numpy()
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    np.testing.assert_allclose(embedder.embed(batch), ref, atol=1e-4)
    # Colour order matters to the network: feeding BGR as if it were RGB gives other embeddings.
    swapped = embedder.embed(np.ascontiguousarray(batch[..., ::-1]))
    assert np.max(np.abs(swapped - ref)) > 1e-3


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({"similarity_threshold": 0.6125}, 0.6125),
        ({}, None),
        ({"similarity_threshold": "high"}, None),
        ({"similarity_threshold": 3.0}, None),
    ],
)
def test_a_checkpoint_brings_its_calibrated_threshold(
    ghost_checkpoint: Path, tmp_path: Path, meta: dict, expected: float | None
) -> None:
    from core.ghostfacenet import load_backbone

    path = save_backbone(load_backbone(ghost_checkpoint), tmp_path / "m.pt", meta)
    assert create_embedder(f"ghostfacenetv2:{path}").suggested_threshold == expected


def test_sface_suggests_its_documented_threshold(sface: Embedder) -> None:
    assert sface.suggested_threshold == pytest.approx(0.36)


def test_model_id_changes_with_the_weights(ghost_checkpoint: Path, tmp_path: Path) -> None:
    torch.manual_seed(1)
    other = save_backbone(GhostFaceNetV2().eval(), tmp_path / "other.pt", {}, half=True)
    a = create_embedder(f"ghostfacenetv2:{ghost_checkpoint}").model_id
    b = create_embedder(f"ghostfacenetv2:{other}").model_id
    assert a != b and a.startswith("ghostfacenetv2@") and b.startswith("ghostfacenetv2@")


def test_cuda_request_falls_back_to_cpu_when_unavailable(
    ghost_checkpoint: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here; the fallback path cannot be exercised")
    with caplog.at_level(logging.WARNING, logger="core.embedding.ghostface"):
        embedder = create_embedder(f"ghostfacenetv2:{ghost_checkpoint}", device="cuda:0")
    assert embedder.device == "cpu"
    assert "CUDA is not available" in caplog.text


def test_invalid_device_is_rejected(ghost_checkpoint: Path) -> None:
    with pytest.raises(ValueError, match="device"):
        create_embedder(f"ghostfacenetv2:{ghost_checkpoint}", device="abacus")


def test_missing_and_broken_checkpoints(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="not found"):
        create_embedder(f"ghostfacenetv2:{tmp_path / 'absent.pt'}")
    broken = tmp_path / "broken.pt"
    broken.write_text("not a checkpoint")
    with pytest.raises(CheckpointError):
        create_embedder(f"ghostfacenetv2:{broken}")


def test_shipped_ghostfacenet_missing_is_a_clear_error(tmp_path: Path) -> None:
    spec = ModelSpec(
        id="ghostfacenetv2",
        filename="ghostfacenetv2.pt",
        sha256=None,
        resource=None,
        url=None,
        licence="MIT",
        description="test",
    )
    store = ModelStore(search_paths=[tmp_path], specs={"ghostfacenetv2": spec}, cache_folder=tmp_path / "c")
    with pytest.raises(ModelNotFoundError) as info:
        create_embedder("ghostfacenetv2", store=store)
    assert "ghostfacenetv2:<checkpoint.pt>" in str(info.value)
    assert str(tmp_path) in str(info.value)


# ---------------------------------------------------------------------------------------------------
# Registry


def test_unknown_embedder_lists_the_known_ones() -> None:
    with pytest.raises(UnknownModelError) as info:
        create_embedder("facenet")
    for name in list_embedders():
        assert name in str(info.value)


def test_spec_parsing() -> None:
    assert list_embedders()[0] == "sface"
    assert parse_spec("sface") == ("sface", None)
    assert parse_spec(" GhostFaceNetV2 ") == ("ghostfacenetv2", None)
    assert parse_spec("ghostfacenetv2:C:\\models\\m.pt") == ("ghostfacenetv2", Path("C:\\models\\m.pt"))
    with pytest.raises(UnknownModelError, match="no weights path"):
        parse_spec("ghostfacenetv2:")
