"""Issue 12, points 2-5: full disks, locks and read-only files are not corruption; nothing is lost.

Full and read-only disks are real: a tmpfs of a few MiB mounted for the test (tests/_disks.py), filled to
ENOSPC or remounted read-only; where this process cannot mount one, those tests are skipped with the
reason, and the full-disk case is also reproduced with SQLite's own size limit (``PRAGMA
max_page_count``, which fails with the same ``SQLITE_FULL``). Locks are held by another process.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import sqlite3
import stat
import time
from pathlib import Path

import pytest

from core import paths
from core.events import make_test_event
from core.gallery import Gallery
from core.history import History
from core.types import RecognitionEvent
from tests._disks import hold_lock, tiny_disk


def _events(n: int, start: float = 1.7e9, thumb_bytes: int = 6000) -> list[RecognitionEvent]:
    base = make_test_event(source="cam 0")
    # Incompressible thumbnails: each event needs its own room on the disk.
    return [
        dataclasses.replace(base, time=start + i, track_id=i, thumbnail=os.urandom(thumb_bytes))
        for i in range(n)
    ]


def _corrupt_copies(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if ".corrupt-" in p.name)


# ---------------------------------------------------------------------------------- history: disk full


def test_history_on_a_full_disk_keeps_events_and_writes_them_when_space_returns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with tiny_disk(tmp_path / "disk", "2m") as disk:
        path = disk.root / "history.sqlite3"
        history = History(path)
        assert history.record(_events(5))
        disk.fill()
        later = _events(40, start=1.8e9)
        with caplog.at_level(logging.WARNING, logger="core.history"):
            for event in later[:20]:
                history.record([event])  # never raises: the events wait in memory
        assert history.pending > 0
        assert history.problem is not None and "full" in history.problem
        assert "no transaction" not in caplog.text
        assert history.count() < 25

        disk.free()
        history._retry_at = 0.0  # the back-off would wait a second; the test does not
        for event in later[20:]:
            history.record([event])
        assert history.pending == 0 and history.problem is None
        assert history.count() == 45  # nothing lost
        history.close()
        assert _corrupt_copies(disk.root) == []


def test_history_extend_on_a_full_disk_raises_the_real_error(tmp_path: Path) -> None:
    with tiny_disk(tmp_path / "disk", "2m") as disk:
        history = History(disk.root / "history.sqlite3")
        history.extend(_events(2))
        disk.fill()
        with pytest.raises(sqlite3.OperationalError) as err:
            history.extend(_events(60, start=1.8e9))
        assert "full" in str(err.value) and "no transaction" not in str(err.value)
        disk.free()
        history.extend(_events(3, start=1.9e9))
        assert history.count() == 5
        history.close()


def test_history_over_its_size_limit_keeps_events_like_a_full_disk(tmp_path: Path) -> None:
    # The same SQLITE_FULL without a tmpfs: SQLite's own page limit, so this runs everywhere.
    history = History(tmp_path / "history.sqlite3")
    history.record(_events(3))
    pages = history._conn.execute("PRAGMA page_count").fetchone()[0]
    history._conn.execute(f"PRAGMA max_page_count={pages}")
    assert not history.record(_events(30, start=1.8e9))
    assert history.pending == 30 and "full" in (history.problem or "")
    history._conn.execute("PRAGMA max_page_count=1073741823")
    assert history.flush_pending()
    assert history.count() == 33
    history.close()
    assert _corrupt_copies(tmp_path) == []


def test_the_history_recorder_does_not_fail_or_drop_events_on_a_full_disk(tmp_path: Path) -> None:
    history = History(tmp_path / "history.sqlite3")
    recorder = history.recorder().plugin
    recorder.on_event(_events(1)[0])
    pages = history._conn.execute("PRAGMA page_count").fetchone()[0]
    history._conn.execute(f"PRAGMA max_page_count={pages}")
    for event in _events(20, start=1.8e9):
        recorder.on_event(event)  # a raise here would count as a plugin failure and switch it off
    history._conn.execute("PRAGMA max_page_count=1073741823")
    recorder.on_stop()
    assert history.count() == 21
    history.close()


# ------------------------------------------------------------------------- history: locked, read-only


def test_a_locked_history_is_not_moved_aside_and_gets_the_events_later(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    with History(path) as first:
        first.extend(_events(4))
    with hold_lock(path) as lock:
        start = time.monotonic()
        history = History(path, busy_timeout_s=0.5)
        assert time.monotonic() - start < 10
        assert history.recovered_from is None
        assert _corrupt_copies(tmp_path) == []
        assert history.read_only and "locked" in (history.problem or "")
        assert not history.record(_events(3, start=1.8e9))
        lock.release()
    assert history.flush_pending()
    assert history.count() == 7 and not history.read_only and history.problem is None
    history.close()


def test_a_read_only_history_is_read_not_emptied(tmp_path: Path) -> None:
    with tiny_disk(tmp_path / "disk", "2m") as disk:
        path = disk.root / "history.sqlite3"
        with History(path) as first:
            first.extend(_events(6))
        disk.read_only()
        history = History(path)
        assert history.recovered_from is None and history.read_only
        assert history.count() == 6  # History shows what is there, not an empty list
        assert "cannot be written" in (history.problem or "")
        assert not history.record(_events(2, start=1.8e9))
        disk.read_only(False)
        assert history.flush_pending()
        assert history.count() == 8
        history.close()
        assert _corrupt_copies(disk.root) == []


def test_only_a_corrupt_history_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    path.write_bytes(b"this is not an SQLite database" * 100)
    history = History(path)
    assert history.recovered_from is not None and history.recovered_from.exists()
    assert history.problem is None and not history.read_only
    history.close()


# -------------------------------------------------------------------------------- point 5: permissions


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_personal_data_is_private_to_the_user(tmp_path: Path) -> None:
    os.umask(0o022)  # the usual umask, under which files are world-readable by default
    for folder in (paths.config_dir(), paths.data_dir(), paths.cache_dir()):
        assert _mode(folder) == 0o700, folder
    history = History()
    history.extend(_events(3))
    exported = tmp_path / "export.csv"
    history.export_csv(exported)
    for name in ("history.sqlite3", "history.sqlite3-wal", "history.sqlite3-shm"):
        assert _mode(paths.data_dir() / name) == 0o600, name
    assert _mode(exported) == 0o600
    history.close()

    # A database left 0644 by an older version is made private when it is opened again.
    os.chmod(paths.history_path(), 0o644)
    History().close()
    assert _mode(paths.history_path()) == 0o600

    # A corrupt copy moved aside keeps the data private too.
    bad = paths.data_dir() / "history.sqlite3"
    bad.write_bytes(b"not a database" * 200)
    os.chmod(bad, 0o644)
    history = History()
    assert history.recovered_from is not None
    assert _mode(history.recovered_from) == 0o600
    history.close()


# ------------------------------------------------------------------------ point 2: the gallery cache


@pytest.fixture()
def gallery_root(demo_dir: Path, tmp_path: Path) -> Path:
    root = tmp_path / "gallery"
    for person in ("obama", "kit_harington"):
        shutil.copytree(demo_dir / "knn_examples" / "train" / person, root / person)
    return root


def _cache_rows(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])
    finally:
        conn.close()


def test_a_gallery_cache_on_a_full_disk_is_kept_and_the_run_goes_on(
    tmp_path: Path, gallery_root: Path, demo_dir: Path, models: tuple
) -> None:
    detector, embedder = models
    with tiny_disk(tmp_path / "disk", "4m") as disk:
        cache = disk.root / "gallery.sqlite3"
        with Gallery(gallery_root, embedder, detector, cache_path=cache) as first:
            assert first.sync().usable == 4
        rows = _cache_rows(cache)
        shutil.copy(demo_dir / "obama2.jpg", gallery_root / "obama" / "new.jpg")
        disk.fill()
        gallery = Gallery(gallery_root, embedder, detector, cache_path=cache)
        report = gallery.sync()  # no traceback: the run goes on with an in-memory cache
        assert report.usable == 5 and not report.problems
        assert gallery.cache_problem is not None and "cannot be used" in gallery.cache_problem
        gallery.close()
        assert cache.exists() and _corrupt_copies(disk.root) == []
        assert _cache_rows(cache) == rows  # the healthy cache is untouched


def test_a_gallery_cache_that_fills_the_disk_during_a_sync_is_not_moved_aside(
    tmp_path: Path, gallery_root: Path, models: tuple
) -> None:
    detector, embedder = models
    with tiny_disk(tmp_path / "disk", "4m") as disk:
        cache = disk.root / "gallery.sqlite3"
        gallery = Gallery(gallery_root, embedder, detector, cache_path=cache)
        disk.fill()  # the cache is open and empty; every write of the sync meets a full disk
        report = gallery.sync()
        assert report.usable == 4 and not report.problems
        assert gallery.cache_problem is not None and "full" in gallery.cache_problem
        gallery.close()
        assert cache.exists() and _corrupt_copies(disk.root) == []


def test_a_locked_gallery_cache_waits_then_goes_on_in_memory(
    tmp_path: Path, gallery_root: Path, models: tuple
) -> None:
    detector, embedder = models
    cache = tmp_path / "gallery.sqlite3"
    with Gallery(gallery_root, embedder, detector, cache_path=cache) as first:
        first.sync()
    with hold_lock(cache):
        gallery = Gallery(gallery_root, embedder, detector, cache_path=cache, cache_busy_timeout_s=0.5)
        assert gallery.sync().usable == 4
        assert "locked" in (gallery.cache_problem or "")
        gallery.close()
    assert _corrupt_copies(tmp_path) == [] and _cache_rows(cache) == 4


def test_a_corrupt_gallery_cache_is_still_moved_aside(
    tmp_path: Path, gallery_root: Path, models: tuple
) -> None:
    detector, embedder = models
    cache = tmp_path / "gallery.sqlite3"
    cache.write_bytes(b"not a database at all" * 100)
    with Gallery(gallery_root, embedder, detector, cache_path=cache) as gallery:
        assert gallery.sync().usable == 4
        assert gallery.cache_recovered_from is not None and gallery.cache_problem is None
    assert len(_corrupt_copies(tmp_path)) == 1


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_the_gallery_cache_and_its_companions_are_private(gallery_root: Path, models: tuple) -> None:
    detector, embedder = models
    os.umask(0o022)
    with Gallery(gallery_root, embedder, detector) as gallery:
        gallery.sync()
        cache = gallery.cache_path
        for suffix in ("", "-wal", "-shm"):
            assert _mode(Path(str(cache) + suffix)) == 0o600, suffix
        assert _mode(cache.parent) == 0o700


# ------------------------------------------------------------------- point 7: cached vectors checked


def test_a_tampered_cached_vector_is_embedded_again(
    tmp_path: Path, gallery_root: Path, models: tuple
) -> None:
    import numpy as np

    detector, embedder = models
    cache = tmp_path / "gallery.sqlite3"
    with Gallery(gallery_root, embedder, detector, cache_path=cache) as gallery:
        gallery.sync()
        truth = dict(zip(gallery.snapshot().labels, gallery.snapshot().matrix, strict=False))
    # Someone with write access to the cache makes every obama photo look like kit_harington.
    conn = sqlite3.connect(cache)
    fake = np.asarray(truth["kit_harington"], np.float32).tobytes()
    n = conn.execute(
        "UPDATE embeddings SET vector = ? WHERE sha256 IN (SELECT sha256 FROM files WHERE path LIKE ?)",
        (fake, f"%{os.sep}obama{os.sep}%"),
    ).rowcount
    conn.commit()
    conn.close()
    assert n == 2
    with Gallery(gallery_root, embedder, detector, cache_path=cache) as gallery:
        report = gallery.sync()
        assert report.embedded == 2 and report.cached == 2
        snap = gallery.snapshot()
        for label, vector in zip(snap.labels, snap.matrix, strict=True):
            if label == "obama":
                assert float(vector @ truth["kit_harington"]) < 0.9


# --------------------------------------------------------------- point 8: a read-only data folder


def test_a_read_only_home_leaves_history_and_plugins_optional(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with tiny_disk(tmp_path / "home", "1m") as disk:
        disk.read_only()  # not even the data folder can be created
        monkeypatch.setenv("GHOSTFACE_HOME", str(disk.root))
        with caplog.at_level(logging.WARNING):
            folder = paths.plugins_dir()
            history = History()
        assert folder == disk.root / "data" / "plugins"
        assert f"the plugins folder {folder} cannot be created" in caplog.text
        assert history.read_only and history.problem is not None
        assert str(disk.root / "data") in history.problem and "Errno" not in history.problem
        assert not history.record(_events(2))  # kept in memory, no exception
        history.close()
        disk.read_only(False)


def test_a_damaged_database_on_a_read_only_disk_is_left_and_worked_around(
    tmp_path: Path, gallery_root: Path, models: tuple
) -> None:
    detector, embedder = models
    with tiny_disk(tmp_path / "disk", "1m") as disk:
        (disk.root / "history.sqlite3").write_bytes(b"damaged" * 500)
        (disk.root / "gallery.sqlite3").write_bytes(b"damaged" * 500)
        disk.read_only()
        history = History(disk.root / "history.sqlite3")  # cannot be moved aside: no exception
        assert history.recovered_from is None and history.problem is not None
        assert not history.record(_events(1))
        history.close()
        with Gallery(gallery_root, embedder, detector, cache_path=disk.root / "gallery.sqlite3") as gallery:
            assert gallery.sync().usable == 4 and gallery.cache_problem is not None
        disk.read_only(False)
        assert _corrupt_copies(disk.root) == []
