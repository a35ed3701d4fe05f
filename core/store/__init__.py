"""Where the gallery and the event history live: this computer (embedded) or a shared PostgreSQL server.

The embedded store is today's folder gallery with its SQLite embedding cache (:mod:`core.gallery`) and
the SQLite history (:mod:`core.history`); it needs no set-up and stays the default. The shared store
(:mod:`core.store.postgres`) keeps one gallery and one history for many stations on a PostgreSQL server.
Both satisfy the small interfaces of :mod:`core.store.base`. psycopg is imported only when a server is
used, so the embedded mode never loads it.
"""

from __future__ import annotations

from core.store.base import EventStore, GalleryStore, StoreError, StoreUnreachable

__all__ = ["EventStore", "GalleryStore", "StoreError", "StoreUnreachable"]
