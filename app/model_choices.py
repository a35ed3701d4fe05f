"""The detector and embedder lists of the settings dialog: human names, and whether each one can load.

The entries come from the engine's registries (:func:`core.detection.list_detectors`,
:func:`core.embedding.list_embedders`); whether a model's file is installed comes from the model store
(:meth:`core.modelstore.ModelStore.locate`), which never loads, hashes or downloads anything, so the
dialog can ask it on the GUI thread.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from core import paths
from core.detection import list_detectors
from core.embedding import list_embedders, parse_spec
from core.errors import CheckpointError, ModelIntegrityError, ModelNotFoundError, UnknownModelError
from core.modelstore import ModelStore

__all__ = [
    "MODEL_LABELS",
    "MODEL_LOAD_ERRORS",
    "ModelChoice",
    "ModelKind",
    "install_model_file",
    "model_choice",
    "model_choices",
]

log = logging.getLogger(__name__)

# What the user reads for each registry name; a name missing here is shown as it is.
MODEL_LABELS: dict[str, str] = {
    "yunet": "YuNet: fast, default",
    "retinaface-mnet025": "RetinaFace MobileNet-0.25: more accurate",
    "sface": "SFace: default",
    "ghostfacenetv2": "GhostFaceNetV2 (ours)",
}

# The exceptions that mean "this model cannot be loaded" (as opposed to a bad frame or source).
MODEL_LOAD_ERRORS: tuple[type[Exception], ...] = (
    ModelNotFoundError,
    ModelIntegrityError,
    CheckpointError,
    UnknownModelError,
)


class ModelKind(StrEnum):
    """Which list: the settings field ``detection.detector`` or ``recognition.embedder``."""

    DETECTOR = "detector"
    EMBEDDER = "embedder"


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """One entry of a model list.

    Attributes:
        spec: what the settings hold (``"yunet"``, ``"ghostfacenetv2:/runs/best.pt"``).
        label: what the user reads, with "(not installed)" when the file is missing.
        problem: why the model cannot load, in a sentence; None when its file is there.
    """

    spec: str
    label: str
    problem: str | None = None


def _name_label(name: str) -> str:
    return MODEL_LABELS.get(name, name)


def _registered(kind: ModelKind, name: str, store: ModelStore) -> ModelChoice:
    """A registry entry: installed when the store finds its file (or may download it on first use)."""
    label = _name_label(name)
    try:
        spec = store.spec(name)
    except UnknownModelError:
        # A registry entry without a weights file of the store's (none today): nothing to find.
        return ModelChoice(name, label)
    if store.locate(name) is not None:
        return ModelChoice(name, label)
    if spec.url is not None and store.allow_download:
        return ModelChoice(name, f"{label} (downloaded when first used)")
    return ModelChoice(
        name,
        f"{label} (not installed)",
        f"{label} is not installed: its file {spec.filename} was not found. Use “Locate file…” to "
        f"point to it, or choose another {kind.value}.",
    )


def model_choice(kind: ModelKind, spec: str, store: ModelStore) -> ModelChoice:
    """The list entry for ``spec``, saying whether it can load.

    Args:
        kind: the detector or the embedder list.
        spec: a registry name, or for an embedder ``"<name>:<weights file>"``.
        store: where registered models' files are looked for.
    """
    if kind is ModelKind.DETECTOR:
        if spec not in list_detectors():
            return ModelChoice(spec, f"{spec} (unknown)", f"{spec!r} is not a known detector.")
        return _registered(kind, spec, store)
    try:
        name, path = parse_spec(spec)
    except UnknownModelError as exc:
        return ModelChoice(spec, f"{spec} (unknown)", str(exc.args[0]))
    if path is None:
        return _registered(kind, name, store)
    label = f"{_name_label(name)}: {path.name}"
    if not path.is_file():
        return ModelChoice(
            spec,
            f"{label} (file not found)",
            f"The model file {path} was not found. Use “Locate file…” to point to it, or choose "
            "another embedder.",
        )
    return ModelChoice(spec, label)


def model_choices(kind: ModelKind, store: ModelStore, current: str = "") -> list[ModelChoice]:
    """Every registry entry of ``kind`` in registry order, then ``current`` if it is not one of them."""
    names = list_detectors() if kind is ModelKind.DETECTOR else list_embedders()
    choices = [model_choice(kind, name, store) for name in names]
    if current and current not in names:
        choices.append(model_choice(kind, current, store))
    return choices


def install_model_file(model_id: str, source: Path, store: ModelStore) -> Path:
    """Copy a located weights file where the store looks first, once it is checked to be that model.

    The file goes into the user's model folder under the name the store looks for, so every part of
    the application (and the command line) finds it from then on, with no path in the settings.

    Returns:
        Where the file now is.

    Raises:
        ModelIntegrityError: the file is not the expected model (its SHA-256 differs from the pin).
        UnknownModelError: ``model_id`` has no weights file in the store.
        OSError: the file could not be read or copied.
    """
    spec = store.spec(model_id)
    store.verify(model_id, source)
    folder = paths.models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / spec.filename
    if source.resolve() != target.resolve():
        partial = target.with_name(target.name + ".part")
        shutil.copyfile(source, partial)
        partial.replace(target)
    log.info("model %s installed from %s to %s", model_id, source, target)
    return target
