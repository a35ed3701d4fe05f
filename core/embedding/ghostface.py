"""GhostFaceNetV2 embeddings (512-d) from a backbone checkpoint.

On the CPU the network runs in its deployed form: exported once to ONNX (into the user cache, keyed by the
checkpoint's SHA-256) and run by OpenCV DNN, which the engine already uses for YuNet and SFace. Measured on
the 2-core development machine, one thread, batch 1-8: 4.3-5.0 ms per crop through OpenCV DNN, 5.1-6.0 ms
through onnxruntime, 5.2-14.6 ms in eager PyTorch; an int8 (static, QDQ) model was slower under
onnxruntime (5.6-6.4 ms) and moved embeddings by up to 0.02 in cosine, so it is not used. PyTorch stays the
path for CUDA and the fallback when the export or its check fails.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch

from core import paths
from core._atomic import atomic_write_text
from core.embedding._base import CROP_SIZE, Embedder
from core.errors import CheckpointError, ModelNotFoundError
from core.ghostfacenet import GhostFaceNetV2, export_onnx, load_backbone, to_memory_format
from core.modelstore import ModelStore, default_store
from core.runtime import apply_torch_threads

__all__ = ["GhostFaceEmbedder", "Runtime", "calibrated_threshold", "deployed_onnx", "resolve_device"]

Runtime = Literal["auto", "opencv", "torch"]

# The deployed model must give the network's own embeddings: checked once when the file is made.
DEPLOY_MIN_COSINE = 0.9999

log = logging.getLogger(__name__)

MODEL_ID = "ghostfacenetv2"


def resolve_device(requested: str) -> torch.device:
    """The torch device to run on: ``requested``, or the CPU (with a warning) when CUDA is unavailable.

    Raises:
        ValueError: ``requested`` is not a device name, or names a GPU index that does not exist.
    """
    try:
        device = torch.device(requested)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"invalid device {requested!r}: use 'cpu', 'cuda' or 'cuda:N'") from exc
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise ValueError(f"unsupported device {requested!r}: use 'cpu', 'cuda' or 'cuda:N'")
    if not torch.cuda.is_available():
        log.warning("CUDA is not available (requested %r); GhostFaceNetV2 runs on the CPU", requested)
        return torch.device("cpu")
    index = 0 if device.index is None else device.index
    count = torch.cuda.device_count()
    if index >= count:
        raise ValueError(f"device {requested!r} does not exist: {count} CUDA device(s) visible")
    return torch.device("cuda", index)


def calibrated_threshold(meta: dict, source: Path) -> float | None:
    """The ``similarity_threshold`` a checkpoint's meta carries, or None when it has none or an unusable one.

    The trainer stores the one that was best on its held-out validation pairs; ``ghostface calibrate``
    one matched to SFace's false-accept rate.
    """
    value = meta.get("similarity_threshold")
    if value is None:
        log.info("%s carries no calibrated similarity threshold: the settings' value is used", source)
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not -1.0 <= float(value) <= 1.0:
        log.warning("%s: ignored its similarity_threshold %r (not a cosine in [-1, 1])", source, value)
        return None
    return float(value)


def _check_deployed(model: GhostFaceNetV2, net: cv2.dnn.Net) -> float:
    """The lowest cosine between PyTorch's and the deployed net's embeddings of a fixed input batch."""
    x = np.random.default_rng(0).uniform(-1.0, 1.0, (4, 3, CROP_SIZE, CROP_SIZE)).astype(np.float32)
    with torch.inference_mode():
        ref = model.float().eval()(torch.from_numpy(x)).numpy()
    net.setInput(x)
    out = np.asarray(net.forward(), np.float32).reshape(ref.shape)
    cos = (ref * out).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1) + 1e-12)
    return float(cos.min())


def deployed_onnx(model: GhostFaceNetV2, digest: str, cache: Path | None = None) -> tuple[cv2.dnn.Net, Path]:
    """The OpenCV DNN form of ``model`` (checkpoint SHA-256 ``digest``), exported into the cache once.

    The ONNX file's own SHA-256 is written beside it when it is made and checked on every load, so a
    tampered or truncated cached file is rebuilt rather than run; a new file is only kept after its
    embeddings matched PyTorch's (cosine >= 0.9999).

    Raises:
        CheckpointError: the export failed, OpenCV cannot read the result, or it does not match.
    """
    with _DEPLOY_LOCK:  # one export per file even when two workers load the model at once
        return _deployed_onnx(model, digest, cache)


_DEPLOY_LOCK = threading.Lock()


def _deployed_onnx(model: GhostFaceNetV2, digest: str, cache: Path | None) -> tuple[cv2.dnn.Net, Path]:
    folder = cache or paths.cache_dir() / "models"
    onnx_path = folder / f"ghostfacenetv2-{digest[:16]}.onnx"
    pin = onnx_path.with_suffix(".onnx.sha256")
    try:
        if onnx_path.is_file() and pin.is_file():
            # Hashed and loaded from the same bytes: a file changed after the check is never run.
            data = onnx_path.read_bytes()
            if pin.read_text(encoding="ascii").strip() == hashlib.sha256(data).hexdigest():
                return cv2.dnn.readNetFromONNX(np.frombuffer(data, np.uint8)), onnx_path
            log.warning("cached deployed model %s does not match its pin; exporting it again", onnx_path)
    except (OSError, cv2.error) as exc:
        log.warning("cached deployed model %s is unreadable (%s); exporting it again", onnx_path, exc)
    try:
        export_onnx(model, onnx_path)
        data = onnx_path.read_bytes()
        net = cv2.dnn.readNetFromONNX(np.frombuffer(data, np.uint8))
    except (OSError, cv2.error) as exc:
        raise CheckpointError(f"cannot deploy GhostFaceNetV2 to {onnx_path}: {exc}") from exc
    agreement = _check_deployed(model, net)
    if agreement < DEPLOY_MIN_COSINE:
        onnx_path.unlink(missing_ok=True)
        raise CheckpointError(
            f"the deployed GhostFaceNetV2 disagrees with PyTorch (cosine {agreement:.5f} < {DEPLOY_MIN_COSINE})"
        )
    atomic_write_text(pin, hashlib.sha256(data).hexdigest() + "\n")
    log.info("GhostFaceNetV2 deployed to %s (cosine to PyTorch %.6f)", onnx_path, agreement)
    return net, onnx_path


def _read_weights(checkpoint: Path | None, store: ModelStore | None) -> tuple[Path, bytes, str]:
    """The checkpoint's path, bytes and SHA-256: the shipped model through the store, else the given file.

    The bytes are read once, hashed, and loaded from memory, so what runs is what was verified.

    Raises:
        ModelNotFoundError: no such file, or no installed model.
        ModelIntegrityError: the installed model does not match its pin.
    """
    if checkpoint is None:
        store = store or default_store()
        try:
            verified = store.load_verified(MODEL_ID)
        except ModelNotFoundError as exc:
            raise ModelNotFoundError(
                f"{exc}\nNo GhostFaceNetV2 model is installed yet: train one (ghostface train) and "
                f"use the embedder 'ghostfacenetv2:<checkpoint.pt>', or use 'sface'."
            ) from exc
        return verified.path, verified.data, verified.sha256
    checkpoint = Path(checkpoint).expanduser()
    if not checkpoint.is_file():
        raise ModelNotFoundError(f"GhostFaceNetV2 checkpoint not found: {checkpoint}")
    try:
        data = checkpoint.read_bytes()
    except OSError as exc:
        raise ModelNotFoundError(f"cannot read {checkpoint}: {exc.strerror or exc}") from exc
    return checkpoint, data, hashlib.sha256(data).hexdigest()


class GhostFaceEmbedder(Embedder):
    """GhostFaceNetV2 face embeddings.

    Preprocessing is the one the network was trained with: RGB, ``(x - 127.5) / 127.5``, NCHW.

    Args:
        checkpoint: a backbone checkpoint (:func:`core.ghostfacenet.save_backbone` format, or a raw
            state dict of the original layout); None resolves the shipped ``"ghostfacenetv2"`` model.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; falls back to the CPU if CUDA is unavailable.
        store: the model store; None means :func:`core.modelstore.default_store`.
        runtime: ``"auto"`` (OpenCV DNN on the CPU, PyTorch on CUDA or when deployment fails),
            ``"opencv"`` (the deployed form; an error if it cannot be made) or ``"torch"``.

    Raises:
        ModelNotFoundError: no checkpoint at the given path, or no shipped model.
        CheckpointError: the checkpoint is unreadable or does not fit the network.
    """

    name = MODEL_ID

    def __init__(
        self,
        checkpoint: Path | None = None,
        *,
        device: str = "cpu",
        store: ModelStore | None = None,
        runtime: Runtime = "auto",
    ) -> None:
        checkpoint, data, digest = _read_weights(checkpoint, store)
        apply_torch_threads()
        torch_device = resolve_device(device)
        model = load_backbone(data, map_location="cpu", source=str(checkpoint))
        if model.arch.get("input_size", CROP_SIZE) != CROP_SIZE:
            raise CheckpointError(
                f"{checkpoint} was built for {model.arch['input_size']}-pixel faces; the embedder feeds "
                f"aligned {CROP_SIZE}x{CROP_SIZE} crops"
            )
        model = model.to(torch_device).eval()
        self._net: cv2.dnn.Net | None = None
        self._deployed_path: Path | None = None
        if torch_device.type == "cpu" and runtime != "torch":
            try:
                self._net, self._deployed_path = deployed_onnx(model, digest)
            except CheckpointError as exc:
                if runtime == "opencv":
                    raise
                log.warning("%s; GhostFaceNetV2 runs in PyTorch", exc)
        self._channels_last = torch_device.type == "cpu"
        if self._channels_last:
            # Depthwise-heavy nets run faster in NHWC with oneDNN on the CPU (measured: see the report).
            model = to_memory_format(model, torch.channels_last)
        self._model = model
        self._torch_device = torch_device
        # Forward passes are serialised: BN/PReLU modules are stateless in eval mode, but one model
        # driven by two threads at once only contends for the same cores.
        self._lock = threading.Lock()
        super().__init__(
            model_id=f"{MODEL_ID}@{digest[:12]}",
            dim=model.embedding_size,
            device=str(torch_device),
            model_path=checkpoint,
            suggested_threshold=calibrated_threshold(model.meta, checkpoint),
        )
        log.info("GhostFaceNetV2 %s loaded from %s on %s", model.arch, checkpoint, torch_device)

    @property
    def runtime(self) -> str:
        """What runs the network: ``"opencv-dnn"`` (deployed ONNX) or ``"pytorch"``."""
        return "opencv-dnn" if self._net is not None else "pytorch"

    @property
    def deployed_path(self) -> Path | None:
        """The ONNX file OpenCV runs (in the user cache), or None in PyTorch."""
        return self._deployed_path

    @property
    def network(self) -> torch.nn.Module:
        """The underlying GhostFaceNetV2 (eval mode)."""
        return self._model

    def _forward(self, batch_bgr: np.ndarray) -> np.ndarray:
        if self._net is not None:
            # One conversion for the whole batch: BGR -> RGB, (x - 127.5) / 127.5, NHWC -> NCHW.
            blob = cv2.dnn.blobFromImages(
                list(batch_bgr), 1.0 / 127.5, (CROP_SIZE, CROP_SIZE), (127.5, 127.5, 127.5), swapRB=True
            )
            with self._lock:  # a cv2.dnn.Net keeps per-forward state
                self._net.setInput(blob)
                out = self._net.forward()
            return np.asarray(out, np.float32).reshape(batch_bgr.shape[0], -1)
        # Move uint8 to the device first (4x less to copy), then convert: BGR -> RGB, NHWC -> NCHW.
        pixels = torch.from_numpy(batch_bgr).to(self._torch_device, non_blocking=False)
        x = pixels.flip(-1).permute(0, 3, 1, 2).float().sub_(127.5).div_(127.5)
        x = x.contiguous(memory_format=torch.channels_last) if self._channels_last else x.contiguous()
        with self._lock, torch.inference_mode():
            out = self._model(x)
        return out.float().cpu().numpy()
