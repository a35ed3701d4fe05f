"""Face detectors behind one registry: ``create_detector("yunet")``, ``list_detectors()``."""

from __future__ import annotations

import importlib

from core.detection._base import Detector, nms
from core.errors import UnknownModelError
from core.modelstore import ModelStore

__all__ = ["Detector", "create_detector", "list_detectors", "nms"]

# name -> "module:Class"; imported on first use so that YuNet users never pay for importing torch.
_REGISTRY: dict[str, str] = {
    "yunet": "core.detection.yunet:YuNetDetector",
    "retinaface-mnet025": "core.detection.retinaface:RetinaFaceDetector",
}


def list_detectors() -> list[str]:
    """The registered detector names; the first is the default."""
    return list(_REGISTRY)


def create_detector(
    name: str,
    *,
    score_threshold: float = 0.6,
    nms_threshold: float | None = None,
    device: str = "cpu",
    store: ModelStore | None = None,
    max_side: int | None = None,
) -> Detector:
    """Build a detector by name.

    Args:
        name: one of :func:`list_detectors`.
        score_threshold: minimum confidence of a returned face (settable later).
        nms_threshold: IoU for non-maximum suppression; None means the model's own default
            (0.3 for YuNet, 0.4 for RetinaFace, as their authors ship them).
        device: ``"cpu"`` or ``"cuda[:N]"`` (PyTorch models only; OpenCV ones run on the CPU).
        store: where to find the weights; None means :func:`core.modelstore.default_store`.
        max_side: detect on a copy whose longer side is at most this many pixels; 0 means full size and
            None the model's own default (full size for YuNet, 640 for RetinaFace).

    Raises:
        UnknownModelError: ``name`` is not registered (the message lists the known names).
        ModelNotFoundError, ModelIntegrityError: the weights are missing or corrupt.
    """
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown detector {name!r}; known detectors: {', '.join(_REGISTRY)}"
        ) from None
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    kwargs: dict[str, object] = {}
    if nms_threshold is not None:
        kwargs["nms_threshold"] = nms_threshold
    if max_side is None:
        max_side = cls.default_max_side
    return cls(score_threshold=score_threshold, device=device, max_side=max_side, store=store, **kwargs)
