"""Export a trained network: the engine's backbone checkpoint (optionally fp16) and, optionally, ONNX."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from core.errors import CheckpointError
from core.ghostfacenet import GhostFaceNetV2, load_backbone, save_backbone
from core.ghostfacenet import export_onnx as core_export_onnx
from trainer.checkpoints import TRAINING_CHECKPOINT_FORMAT, load_training_checkpoint

__all__ = ["export_backbone", "export_onnx", "load_network"]

log = logging.getLogger(__name__)


def load_network(path: str | Path) -> tuple[GhostFaceNetV2, dict[str, Any]]:
    """The backbone from a training checkpoint (``last.pt``) or a backbone checkpoint, and its meta."""
    path = Path(path)
    try:
        raw = torch.load(path, map_location="cpu", weights_only=False) if path.is_file() else None
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same clear error
        raise CheckpointError(f"{path} is not a readable checkpoint: {exc}") from exc
    if isinstance(raw, dict) and raw.get("format") == TRAINING_CHECKPOINT_FORMAT:
        data = load_training_checkpoint(path)
        model = GhostFaceNetV2(**data["arch"])
        model.load_state_dict(data["backbone"])
        meta = {
            "mode": data["config"]["mode"],
            "epochs_trained": len(data["history"]),
            "history": data["history"],
        }
        return model.eval(), meta
    model = load_backbone(path)
    meta = raw.get("meta", {}) if isinstance(raw, dict) else {}
    return model, dict(meta)


def export_backbone(
    source: str | Path | GhostFaceNetV2,
    target: str | Path,
    *,
    meta: Mapping[str, Any] | None = None,
    half: bool = True,
) -> Path:
    """Write an engine-loadable backbone (``create_embedder("ghostfacenetv2:<target>")``).

    Args:
        source: a network, a training checkpoint or a backbone checkpoint.
        target: the file to write.
        meta: JSON-compatible run information to store (merged over the source's).
        half: store fp16 weights (half the size; the engine casts back to fp32).
    """
    base_meta: dict[str, Any]
    if isinstance(source, GhostFaceNetV2):
        model, base_meta = source, {}
    else:
        model, base_meta = load_network(source)
    merged = {k: v for k, v in base_meta.items() if k != "history"}
    merged.update(dict(meta or {}))
    path = save_backbone(model.float().eval(), target, merged, half=half)
    log.info("exported backbone %s to %s (%s)", model.arch, path, "fp16" if half else "fp32")
    return path


def export_onnx(source: str | Path | GhostFaceNetV2, target: str | Path, *, opset: int = 17) -> Path:
    """Export the backbone to ONNX (input ``crops``: N x 3 x 112 x 112 RGB in [-1, 1]; output ``embedding``).

    The engine's own exporter (:func:`core.ghostfacenet.export_onnx`) does the work, so the file a user
    exports is the one the engine would deploy.

    Raises:
        CheckpointError: the source is unreadable or the export failed.
    """
    model = source if isinstance(source, GhostFaceNetV2) else load_network(source)[0]
    path = core_export_onnx(model, target, opset=opset)
    log.info("exported ONNX model to %s", path)
    return path
