"""The interfaces both stores satisfy: the engine and the GUI use these, never a back-end's own class."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from core.errors import GhostFaceError
from core.types import EventKind, RecognitionEvent

__all__ = ["EventStore", "GalleryStore", "StoreError", "StoreUnreachable"]


class StoreError(GhostFaceError):
    """The shared store cannot be used: unreachable, refused log-in, wrong schema, missing rights."""


class StoreUnreachable(StoreError):
    """No connection to the server could be made (network, server down, refused log-in)."""


@runtime_checkable
class GalleryStore(Protocol):
    """A gallery: people, their photos, and the embeddings the matcher uses.

    :class:`core.gallery.Gallery` (a folder) and :class:`core.store.postgres.SharedGallery` (a server)
    satisfy it.
    """

    def snapshot(self) -> Any:
        """The embeddings in use, as an immutable :class:`core.gallery.GallerySnapshot`."""
        ...

    def sync(self, progress: Any = None, cancel: threading.Event | None = None) -> Any:
        """Embed what is missing for the current model and publish a new snapshot."""
        ...

    def people(self) -> list[Any]:
        """Everyone in the gallery, as :class:`core.gallery.PersonInfo`, sorted by name."""
        ...

    def add_photos(self, name: str, paths: Iterable[Path | str], *args: Any, **kwargs: Any) -> Any:
        """Enrol photos of a person (created when new); an :class:`core.gallery.EnrollReport`."""
        ...

    def rename_person(self, old: str, new: str) -> Any:
        """Rename a person; their embeddings carry over."""
        ...

    def close(self) -> None:
        """Release the gallery's resources."""
        ...


@runtime_checkable
class EventStore(Protocol):
    """An event history: what the history recorder writes into and the History window reads.

    :class:`core.history.History` (SQLite) and :class:`core.store.postgres.SharedHistory` satisfy it.
    """

    problem: str | None
    read_only: bool

    def record(self, events: Iterable[RecognitionEvent]) -> bool:
        """Store events, or keep them for later when they cannot be written now; never raises."""
        ...

    def flush_pending(self) -> bool:
        """Try now to write what waits; True when nothing waits any more."""
        ...

    @property
    def pending(self) -> int:
        """Events waiting to be written."""
        ...

    def query(
        self,
        person: str | None = None,
        since: float | None = None,
        until: float | None = None,
        kinds: Sequence[EventKind | str] | None = None,
        limit: int | None = 1000,
        *,
        newest_first: bool = True,
        thumbnails: bool = True,
    ) -> list[RecognitionEvent]:
        """Events matching every filter given."""
        ...

    def export_csv(self, path: Path, *args: Any, **kwargs: Any) -> int:
        """Write the matching events as CSV; the number of rows."""
        ...

    def prune(self, max_days: float | None = None, max_mb: float | None = None) -> int:
        """Apply the retention limits; the number of events removed."""
        ...

    def close(self) -> None:
        """Write what waits if possible, then release the history."""
        ...
