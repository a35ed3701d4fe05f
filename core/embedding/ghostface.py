"""GhostFaceNetV2 embeddings (512-d) from a backbone checkpoint, with PyTorch on the CPU or a CUDA GPU."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import torch

from core.embedding._base import CROP_SIZE, Embedder
from core.errors import CheckpointError, ModelNotFoundError
from core.ghostfacenet import load_backbone
from core.modelstore import ModelStore, default_store, sha256_of
from core.runtime import apply_torch_threads

__all__ = ["GhostFaceEmbedder", "calibrated_threshold", "resolve_device"]

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
    """The ``similarity_threshold`` a checkpoint's meta carries (the trainer stores the one that was best
    on its held-out validation pairs), or None when it has none or an unusable one."""
    value = meta.get("similarity_threshold")
    if value is None:
        log.info("%s carries no calibrated similarity threshold: the settings' value is used", source)
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not -1.0 <= float(value) <= 1.0:
        log.warning("%s: ignored its similarity_threshold %r (not a cosine in [-1, 1])", source, value)
        return None
    return float(value)


class GhostFaceEmbedder(Embedder):
    """GhostFaceNetV2 face embeddings.

    Preprocessing is the one the network was trained with: RGB, ``(x - 127.5) / 127.5``, NCHW.

    Args:
        checkpoint: a backbone checkpoint (:func:`core.ghostfacenet.save_backbone` format, or a raw
            state dict of the original layout); None resolves the shipped ``"ghostfacenetv2"`` model.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; falls back to the CPU if CUDA is unavailable.
        store: the model store; None means :func:`core.modelstore.default_store`.

    Raises:
        ModelNotFoundError: no checkpoint at the given path, or no shipped model.
        CheckpointError: the checkpoint is unreadable or does not fit the network.
    """

    name = MODEL_ID

    def __init__(
        self, checkpoint: Path | None = None, *, device: str = "cpu", store: ModelStore | None = None
    ) -> None:
        if checkpoint is None:
            store = store or default_store()
            try:
                checkpoint = store.resolve(MODEL_ID)
            except ModelNotFoundError as exc:
                raise ModelNotFoundError(
                    f"{exc}\nNo GhostFaceNetV2 model is installed yet: train one (ghostface train) and "
                    f"use the embedder 'ghostfacenetv2:<checkpoint.pt>', or use 'sface'."
                ) from exc
            digest = store.verify(MODEL_ID, checkpoint)
        else:
            checkpoint = Path(checkpoint).expanduser()
            if not checkpoint.is_file():
                raise ModelNotFoundError(f"GhostFaceNetV2 checkpoint not found: {checkpoint}")
            digest = sha256_of(checkpoint)
        apply_torch_threads()
        torch_device = resolve_device(device)
        model = load_backbone(checkpoint, map_location="cpu")
        if model.arch.get("input_size", CROP_SIZE) != CROP_SIZE:
            raise CheckpointError(
                f"{checkpoint} was built for {model.arch['input_size']}-pixel faces; the embedder feeds "
                f"aligned {CROP_SIZE}x{CROP_SIZE} crops"
            )
        model = model.to(torch_device).eval()
        self._channels_last = torch_device.type == "cpu"
        if self._channels_last:
            # Depthwise-heavy nets run faster in NHWC with oneDNN on the CPU (measured: see the report).
            model = model.to(memory_format=torch.channels_last)
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
    def network(self) -> torch.nn.Module:
        """The underlying GhostFaceNetV2 (eval mode)."""
        return self._model

    def _forward(self, batch_bgr: np.ndarray) -> np.ndarray:
        # Move uint8 to the device first (4x less to copy), then convert: BGR -> RGB, NHWC -> NCHW.
        pixels = torch.from_numpy(batch_bgr).to(self._torch_device, non_blocking=False)
        x = pixels.flip(-1).permute(0, 3, 1, 2).float().sub_(127.5).div_(127.5)
        x = x.contiguous(memory_format=torch.channels_last) if self._channels_last else x.contiguous()
        with self._lock, torch.inference_mode():
            out = self._model(x)
        return out.float().cpu().numpy()
