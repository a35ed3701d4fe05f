"""The one place that turns :class:`~core.settings.Settings` into engine parts.

The app's workers (live recognition, gallery jobs, camera enrolment), the command line and anything
else that needs a detector, an embedder or a gallery builds it here, so that every thread sees a face
the same way. This matters beyond tidiness: the gallery's embedding cache is keyed by photo, model and
preprocessing, not by who embedded the photo, so a detector built with other arguments in another
thread (once: full-size detection in the gallery worker, ``max_side_px`` in the live worker) made a
photo's cached embedding depend on which thread embedded it first.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.detection import Detector, create_detector
from core.embedding import Embedder, create_embedder
from core.gallery import Gallery, GallerySnapshot
from core.paths import default_gallery_dir
from core.settings import Settings

if TYPE_CHECKING:
    from core.store.shared_gallery import SharedGallery
    from core.store.shared_history import SharedHistory

__all__ = [
    "GalleryView",
    "open_shared_gallery",
    "open_store_gallery",
    "open_shared_history",
    "build_detector",
    "build_embedder",
    "configure_detector",
    "gallery_root",
    "open_gallery",
]


def build_detector(settings: Settings, *, evaluation: bool = False) -> Detector:
    """The detector the settings ask for, with their thresholds and detection resolution.

    Args:
        settings: the settings to build from.
        evaluation: detect at the model's own default resolution (full size for YuNet, 640 for
            RetinaFace), ignoring ``max_side_px``, as the published accuracy figures were measured.
            Only for evaluation sets of small photos (LFW is 250x250), whose results are never cached.
    """
    det = settings.detection
    return create_detector(
        det.detector,
        score_threshold=det.score_threshold,
        nms_threshold=det.nms_threshold,
        device=settings.recognition.device,
        max_side=None if evaluation else det.max_side_px,
    )


def configure_detector(detector: Detector, settings: Settings) -> None:
    """Give a built detector the live detection settings (thresholds, resolution), from any change."""
    det = settings.detection
    detector.score_threshold = det.score_threshold
    detector.nms_threshold = det.nms_threshold
    detector.max_side = det.max_side_px


def build_embedder(settings: Settings) -> Embedder:
    """The embedder the settings ask for, on their device."""
    return create_embedder(settings.recognition.embedder, device=settings.recognition.device)


def gallery_root(settings: Settings) -> Path:
    """The gallery folder: the one the settings name, or the default one in the user's data folder."""
    return Path(settings.gallery_dir).expanduser() if settings.gallery_dir else default_gallery_dir()


def open_gallery(
    settings: Settings,
    detector: Detector,
    embedder: Embedder,
    *,
    cache_path: Path | None = None,
    allow_largest: bool = False,
) -> Gallery:
    """The gallery of the settings' folder, embedding with the given models.

    The models must belong to the thread that will write to the gallery (:class:`core.gallery.Gallery`
    calls them only from its writer's thread).
    """
    return Gallery(
        gallery_root(settings),
        embedder,
        detector,
        cache_path=cache_path,
        allow_largest=allow_largest,
    )


def open_shared_gallery(
    settings: Settings,
    detector: Detector,
    embedder: Embedder,
    *,
    conninfo: str | None = None,
    allow_largest: bool = False,
    listen: bool = True,
) -> SharedGallery:
    """The gallery on the settings' PostgreSQL server (or ``conninfo``), for this station.

    Raises:
        core.store.StoreError: the server is unreachable, refuses the log-in, or its schema does not fit.
    """
    from core.store.shared_gallery import SharedGallery

    return SharedGallery(
        conninfo or settings.store.url,
        embedder,
        detector,
        station=settings.store.station_name(),
        allow_largest=allow_largest,
        listen=listen,
    )


def open_store_gallery(
    settings: Settings, detector: Detector, embedder: Embedder, *, allow_largest: bool = False
) -> Gallery | SharedGallery:
    """The gallery the settings' store names: the folder (embedded, the default) or the shared server.

    Raises:
        core.store.StoreError: a shared store that is unreachable, refuses the log-in, or does not fit.
    """
    if settings.store.backend == "postgresql":
        if not settings.store.url.strip():
            from core.store import StoreError

            raise StoreError("the shared store has no server address: set it in Settings, Stations")
        return open_shared_gallery(settings, detector, embedder, allow_largest=allow_largest)
    return open_gallery(settings, detector, embedder, allow_largest=allow_largest)


def open_shared_history(
    settings: Settings, *, conninfo: str | None = None, check_now: bool = True
) -> SharedHistory:
    """The event history on the settings' PostgreSQL server (or ``conninfo``), with this station's outbox.

    ``check_now=False`` returns without contacting the server (see :class:`SharedHistory`).

    Raises:
        core.store.StoreError: with ``check_now``, the server's schema does not fit.
    """
    from core.store.shared_history import SharedHistory

    return SharedHistory(
        conninfo or settings.store.url, station=settings.store.station_name(), check_now=check_now
    )


_EMPTY = GallerySnapshot(np.zeros((0, 0), np.float32), ())


class GalleryView:
    """The embeddings of a gallery that another thread owns: one owner per folder, many readers.

    The owner (the app's gallery worker) embeds, enrols and renames, and publishes its
    :class:`~core.gallery.Gallery` here; a reader (the live pipeline) only ever takes the latest
    immutable snapshot, from any thread. So one folder has one writer and one embedding cache user,
    and a photo is never embedded twice by two threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gallery: Gallery | None = None

    def publish(self, gallery: Gallery | None) -> None:
        """The owner's gallery from now on (None: it closed)."""
        with self._lock:
            self._gallery = gallery

    def snapshot(self) -> GallerySnapshot:
        """The embeddings in use (empty until the owner has published its gallery)."""
        with self._lock:
            gallery = self._gallery
        return gallery.snapshot() if gallery is not None else _EMPTY

    @property
    def cache_problem(self) -> str | None:
        """Why the owner's embedding cache on disk is not in use (see :class:`~core.gallery.Gallery`)."""
        with self._lock:
            gallery = self._gallery
        return gallery.cache_problem if gallery is not None else None

    @property
    def cache_recovered_from(self) -> Path | None:
        """Where the owner's damaged embedding cache was moved, else None."""
        with self._lock:
            gallery = self._gallery
        return gallery.cache_recovered_from if gallery is not None else None
