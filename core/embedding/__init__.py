"""Face embedders behind one registry: ``create_embedder("sface")``, ``create_embedder("ghostfacenetv2:x.pt")``."""

from __future__ import annotations

import importlib
from pathlib import Path

from core.embedding._base import CROP_SIZE, PREPROCESSING_VERSION, Embedder, l2_normalize
from core.errors import UnknownModelError
from core.modelstore import ModelStore

__all__ = [
    "CROP_SIZE",
    "DEFAULT_EMBEDDER",
    "PREPROCESSING_VERSION",
    "Embedder",
    "create_embedder",
    "l2_normalize",
    "list_embedders",
    "parse_spec",
]

DEFAULT_EMBEDDER = "sface"

# name -> "module:Class"; imported on first use so that SFace users never pay for importing torch.
_REGISTRY: dict[str, str] = {
    "sface": "core.embedding.sface:SFaceEmbedder",
    "ghostfacenetv2": "core.embedding.ghostface:GhostFaceEmbedder",
}


def list_embedders() -> list[str]:
    """The registered embedder names; the first is the default."""
    return list(_REGISTRY)


def parse_spec(spec: str) -> tuple[str, Path | None]:
    r"""Split ``"name"`` or ``"name:/path/to/weights"`` into the name and the optional weights path.

    Only the first colon separates, so Windows paths (``ghostfacenetv2:C:\m.pt``) survive.

    Raises:
        UnknownModelError: the name is not registered (the message lists the known ones).
    """
    name, sep, rest = spec.strip().partition(":")
    name = name.strip().lower()
    if name not in _REGISTRY:
        raise UnknownModelError(
            f"unknown embedder {spec!r}; known embedders: {', '.join(_REGISTRY)} "
            f"(a checkpoint path may follow a colon, e.g. 'ghostfacenetv2:/path/to/model.pt')"
        )
    rest = rest.strip()
    if sep and not rest:
        raise UnknownModelError(f"embedder spec {spec!r} has a colon but no weights path after it")
    return name, (Path(rest).expanduser() if rest else None)


def create_embedder(
    spec: str = DEFAULT_EMBEDDER, *, device: str = "cpu", store: ModelStore | None = None
) -> Embedder:
    """Build an embedder from a spec.

    Args:
        spec: ``"sface"`` (the default), ``"ghostfacenetv2"`` (the installed model) or
            ``"<name>:<weights file>"`` (e.g. ``"ghostfacenetv2:/runs/best.pt"``).
        device: ``"cpu"`` or ``"cuda[:N]"``; PyTorch models fall back to the CPU without CUDA,
            OpenCV ones always run on the CPU. :attr:`Embedder.device` says where it really runs.
        store: where to find registered weights; None means :func:`core.modelstore.default_store`.

    Raises:
        UnknownModelError: the name is not registered (the message lists the known ones).
        ModelNotFoundError, ModelIntegrityError: the weights are missing or corrupt.
        CheckpointError: the weights file cannot be read or does not fit the network.
    """
    name, path = parse_spec(spec)
    module_name, class_name = _REGISTRY[name].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(path, device=device, store=store)
