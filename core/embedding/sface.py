"""SFace (OpenCV Zoo, int8 block-quantised) run through ``cv2.dnn``, batched: 128-d embeddings."""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path

import cv2
import numpy as np

from core import paths
from core._atomic import atomic_write_bytes
from core._opencv import quiet_opencv
from core._perms import make_private_dir
from core.embedding._base import CROP_SIZE, Embedder
from core.errors import CheckpointError, ModelNotFoundError
from core.modelstore import ModelStore, default_store, warn_unwritable_folder

__all__ = ["CLEANED_SHA256", "SFaceEmbedder", "clean_onnx_bytes", "clean_onnx_inputs"]

log = logging.getLogger(__name__)

MODEL_ID = "sface"
SFACE_DIM = 128
# OpenCV's recommended cosine threshold for SFace is 0.363; it sits just above the best-accuracy
# threshold measured on held-out CelebA pairs (0.324, core/weights/MODEL_CARD.md), so a stranger is
# more rarely given a name than a known face is missed.
SFACE_THRESHOLD = 0.36


# The OpenCV-loadable copy of each pinned SFace file (its 29 dangling graph inputs removed by
# :func:`clean_onnx_bytes` with onnx 1.23.2), by the SHA-256 of the original. The copy kept in the user
# cache is loaded only when its bytes hash to this; anything else is rebuilt from the verified original.
CLEANED_SHA256 = {
    "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee": (
        "487a139eb85ccd5ff30aef7d0add7f12d2bb7abb90c5f08a7f481b452a660e00"
    ),
}


def clean_onnx_bytes(data: bytes) -> bytes:
    """An ONNX model whose graph lists only the inputs a node really consumes.

    The published SFace file declares 29 weight tensors as graph inputs that no node reads (the
    block-quantised weights are rebuilt from other tensors). OpenCV 5 then sees 30 inputs and refuses
    to set the image input; dropping the dangling ones leaves the computation untouched.
    """
    import onnx  # only needed when the cleaned copy is not cached

    model = onnx.load_from_string(data)
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    consumed = {name for node in graph.node for name in node.input}
    keep = [i for i in graph.input if i.name not in initializers and i.name in consumed]
    dropped = len(graph.input) - len(keep)
    del graph.input[:]
    graph.input.extend(keep)
    log.debug("%d dangling graph inputs removed", dropped)
    return bytes(model.SerializeToString())


def clean_onnx_inputs(source: Path, target: Path) -> Path:
    """Write a cleaned copy (see :func:`clean_onnx_bytes`) of the ONNX file ``source`` to ``target``."""
    atomic_write_bytes(target, clean_onnx_bytes(Path(source).read_bytes()))
    log.info("wrote %s (dangling graph inputs removed from %s)", target, Path(source).name)
    return target


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class SFaceEmbedder(Embedder):
    """SFace face embeddings (128-d) through OpenCV's DNN module.

    Preprocessing is the one of ``cv::FaceRecognizerSF::feature``: RGB, raw 0..255 values, no mean.
    The network is built from bytes that were hashed, never re-read from a path after the check: the
    original against its pin in the model store, the cleaned copy against :data:`CLEANED_SHA256`.

    Args:
        model_path: an SFace ONNX file; None resolves ``"sface"`` through ``store``.
        device: only ``"cpu"`` is supported (other values fall back to it with a warning).
        store: the model store; None means :func:`core.modelstore.default_store`.
    """

    name = MODEL_ID

    def __init__(
        self, model_path: Path | None = None, *, device: str = "cpu", store: ModelStore | None = None
    ) -> None:
        if model_path is None:
            model = (store or default_store()).load_verified(MODEL_ID)
            model_path, data, digest = model.path, model.data, model.sha256
        else:
            model_path = Path(model_path)
            if not model_path.is_file():
                raise ModelNotFoundError(f"SFace model file not found: {model_path}")
            data = model_path.read_bytes()
            digest = _sha256(data)
        if device != "cpu":
            log.warning("SFace runs on the CPU through OpenCV; requested device %r ignored", device)
        self._net = self._load(model_path, data, digest)
        # cv2.dnn.Net keeps per-forward state: two threads calling forward at once would mix inputs.
        self._lock = threading.Lock()
        super().__init__(
            model_id=f"{MODEL_ID}@{digest[:12]}",
            dim=SFACE_DIM,
            device="cpu",
            model_path=model_path,
            suggested_threshold=SFACE_THRESHOLD,
        )

    def _load(self, source: Path, data: bytes, digest: str) -> cv2.dnn.Net:
        cleaned = paths.cache_dir(create=False) / "models" / f"{source.stem}.opencv-{digest[:16]}.onnx"
        self._cleaned_path = cleaned
        pinned = CLEANED_SHA256.get(digest)
        onnx_bytes: bytes | None = None
        if pinned is not None:
            try:
                with open(cleaned, "rb") as fh:
                    cached = fh.read()
            except OSError:
                cached = None
            if cached is not None and _sha256(cached) == pinned:
                onnx_bytes = cached
            elif cached is not None:
                log.warning(
                    "%s is not the expected file (SHA-256 differs); rebuilt from the original", cleaned
                )
        if onnx_bytes is None:
            try:
                onnx_bytes = clean_onnx_bytes(data)
            except ImportError as exc:
                # Not a fault of the file: say what is missing, in one line (the CLI prints only that).
                raise CheckpointError(
                    f"the SFace model cannot be prepared for OpenCV: the Python package 'onnx' is missing "
                    f"({exc}); install it (pip install onnx), or choose another embedder"
                ) from exc
            except Exception as exc:  # onnx raises its own DecodeError types
                raise CheckpointError(f"{source} is not a readable ONNX model: {exc}") from exc
            derived = _sha256(onnx_bytes)
            if pinned is not None and derived == pinned:
                self._keep(cleaned, onnx_bytes)
            elif pinned is not None:
                # Another onnx version serialises differently: the bytes still come from the verified
                # original, in this process, so they are used; but never cached under the pin.
                log.info(
                    "cleaned SFace model has SHA-256 %s, not the pinned %s; used from memory", derived, pinned
                )
        with quiet_opencv():
            try:
                return cv2.dnn.readNetFromONNX(np.frombuffer(onnx_bytes, np.uint8))
            except cv2.error as exc:
                raise CheckpointError(f"OpenCV cannot load the SFace model {source}: {exc}") from exc

    @staticmethod
    def _keep(cleaned: Path, data: bytes) -> None:
        """Cache the cleaned copy; a cache folder that cannot be written only costs time at start."""
        try:
            make_private_dir(cleaned.parent)
            atomic_write_bytes(cleaned, data)
        except OSError as exc:
            warn_unwritable_folder(
                cleaned.parent,
                exc,
                "the model cache folder",
                "the SFace model is prepared again at each start",
            )

    @property
    def cleaned_model_path(self) -> Path:
        """Where the OpenCV-loadable copy is cached (missing when the cache folder cannot be written).

        The network itself was built from memory, from bytes checked against :data:`CLEANED_SHA256`.
        """
        return self._cleaned_path

    def _forward(self, batch_bgr: np.ndarray) -> np.ndarray:
        blob = cv2.dnn.blobFromImages(
            list(batch_bgr), 1.0, (CROP_SIZE, CROP_SIZE), (0, 0, 0), swapRB=True, crop=False
        )
        with self._lock:
            self._net.setInput(blob)
            out = self._net.forward()
        return np.array(out, dtype=np.float32).reshape(batch_bgr.shape[0], SFACE_DIM)
