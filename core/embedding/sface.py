"""SFace (OpenCV Zoo, int8 block-quantised) run through ``cv2.dnn``, batched: 128-d embeddings."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import cv2
import numpy as np

from core import paths
from core._atomic import atomic_write_bytes
from core.embedding._base import CROP_SIZE, Embedder
from core.errors import CheckpointError, ModelNotFoundError
from core.modelstore import ModelStore, default_store, sha256_of

__all__ = ["SFaceEmbedder", "clean_onnx_inputs"]

log = logging.getLogger(__name__)

MODEL_ID = "sface"
SFACE_DIM = 128
# OpenCV's recommended cosine threshold for SFace is 0.363; it sits just above the best-accuracy
# threshold measured on held-out CelebA pairs (0.324, core/weights/MODEL_CARD.md), so a stranger is
# more rarely given a name than a known face is missed.
SFACE_THRESHOLD = 0.36


def clean_onnx_inputs(source: Path, target: Path) -> Path:
    """Write a copy of an ONNX model whose graph lists only the inputs a node really consumes.

    The published SFace file declares 29 weight tensors as graph inputs that no node reads (the
    block-quantised weights are rebuilt from other tensors). OpenCV 5 then sees 30 inputs and refuses
    to set the image input; dropping the dangling ones leaves the computation untouched.
    """
    import onnx  # only needed the first time a model file is seen

    model = onnx.load(str(source))
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    consumed = {name for node in graph.node for name in node.input}
    keep = [i for i in graph.input if i.name not in initializers and i.name in consumed]
    dropped = len(graph.input) - len(keep)
    del graph.input[:]
    graph.input.extend(keep)
    atomic_write_bytes(target, model.SerializeToString())
    log.info("wrote %s (%d dangling graph inputs removed from %s)", target, dropped, source.name)
    return target


class SFaceEmbedder(Embedder):
    """SFace face embeddings (128-d) through OpenCV's DNN module.

    Preprocessing is the one of ``cv::FaceRecognizerSF::feature``: RGB, raw 0..255 values, no mean.

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
            store = store or default_store()
            model_path = store.resolve(MODEL_ID)
            digest = store.verify(MODEL_ID, model_path)  # cached, so this does not hash again
        else:
            model_path = Path(model_path)
            if not model_path.is_file():
                raise ModelNotFoundError(f"SFace model file not found: {model_path}")
            digest = sha256_of(model_path)
        if device != "cpu":
            log.warning("SFace runs on the CPU through OpenCV; requested device %r ignored", device)
        self._net = self._load(model_path, digest)
        # cv2.dnn.Net keeps per-forward state: two threads calling forward at once would mix inputs.
        self._lock = threading.Lock()
        super().__init__(
            model_id=f"{MODEL_ID}@{digest[:12]}",
            dim=SFACE_DIM,
            device="cpu",
            model_path=model_path,
            suggested_threshold=SFACE_THRESHOLD,
        )

    def _load(self, source: Path, digest: str) -> cv2.dnn.Net:
        cleaned = paths.cache_dir() / "models" / f"{source.stem}.opencv-{digest[:16]}.onnx"
        self._cleaned_path = cleaned
        for attempt in (1, 2):
            if not cleaned.is_file():
                try:
                    clean_onnx_inputs(source, cleaned)
                except Exception as exc:  # onnx raises its own DecodeError types
                    raise CheckpointError(f"{source} is not a readable ONNX model: {exc}") from exc
            try:
                return cv2.dnn.readNet(str(cleaned))
            except cv2.error as exc:
                cleaned.unlink(missing_ok=True)
                if attempt == 2:
                    raise CheckpointError(f"OpenCV cannot load the SFace model {source}: {exc}") from exc
                log.warning("cached SFace model %s was unreadable; rebuilding it", cleaned)
        raise AssertionError("unreachable")

    @property
    def cleaned_model_path(self) -> Path:
        """The OpenCV-loadable copy of the model (in the user cache) that actually runs."""
        return self._cleaned_path

    def _forward(self, batch_bgr: np.ndarray) -> np.ndarray:
        blob = cv2.dnn.blobFromImages(
            list(batch_bgr), 1.0, (CROP_SIZE, CROP_SIZE), (0, 0, 0), swapRB=True, crop=False
        )
        with self._lock:
            self._net.setInput(blob)
            out = self._net.forward()
        return np.array(out, dtype=np.float32).reshape(batch_bgr.shape[0], SFACE_DIM)
