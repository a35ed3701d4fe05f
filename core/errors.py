"""The engine's exceptions. Each message says what went wrong and what to do about it."""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "GalleryError",
    "GhostFaceError",
    "ImageReadError",
    "ImageRefusedError",
    "InvalidPersonName",
    "ModelIntegrityError",
    "ModelNotFoundError",
    "SourceError",
    "UnknownModelError",
]


class GhostFaceError(Exception):
    """Base class of every error the engine raises on purpose."""


class UnknownModelError(GhostFaceError, KeyError):
    """A model name that no registry knows."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelNotFoundError(GhostFaceError, FileNotFoundError):
    """A model file that is in none of the places the model store looks."""


class ModelIntegrityError(GhostFaceError):
    """A model file whose SHA-256 is not the pinned one (corrupt or a different file)."""


class CheckpointError(GhostFaceError):
    """A checkpoint that does not fit the network (wrong shapes or keys) or cannot be read."""


class SourceError(GhostFaceError):
    """A frame source that cannot be opened or stopped delivering frames."""


class ImageReadError(GhostFaceError):
    """A file that is not a readable image."""


class ImageRefusedError(ImageReadError):
    """A file that is not read as a photo on purpose: not a regular file (a pipe, a device), or too large."""


class GalleryError(GhostFaceError):
    """A gallery operation that cannot be done (missing person, name taken, ...)."""


class InvalidPersonName(GalleryError, ValueError):
    """A person name that is not a safe folder name (``../x``, empty, reserved, ...)."""
