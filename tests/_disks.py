"""Real disk states for tests: a tiny tmpfs that can be filled up or made read-only, and a lock holder.

A full disk is a real full file system here: a 1-4 MiB tmpfs mounted under the test's folder (root can
mount one; the tests that need it are skipped, with the reason, where it cannot). A read-only file
system is the same tmpfs remounted read-only. A locked database is locked by another process.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["LockHolder", "TinyDisk", "hold_lock", "tiny_disk"]


@dataclass
class TinyDisk:
    """A mounted tmpfs of a few MiB."""

    root: Path
    _filler: Path | None = None

    def fill(self) -> None:
        """Fill the file system to the last byte (ENOSPC)."""
        self._filler = self.root / ".filler"
        fd = os.open(self._filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (1 << 16, 4096, 512, 1):  # big blocks first, then the last bytes
                try:
                    while True:
                        os.write(fd, b"\0" * size)
                except OSError as exc:
                    assert exc.errno in (errno.ENOSPC, errno.EFBIG), exc
        finally:
            os.close(fd)

    def free(self) -> None:
        """Give the space back."""
        if self._filler is not None:
            self._filler.unlink(missing_ok=True)
            self._filler = None

    def read_only(self, on: bool = True) -> None:
        """Remount the file system read-only (or read-write again)."""
        mode = "ro" if on else "rw"
        subprocess.run(["mount", "-o", f"remount,{mode}", str(self.root)], check=True)


@contextlib.contextmanager
def tiny_disk(where: Path, size: str = "2m") -> Iterator[TinyDisk]:
    """Mount a tmpfs of ``size`` at ``where``; skip the test (saying why) when this process cannot."""
    where.mkdir(parents=True, exist_ok=True)
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("a full or read-only disk needs a tmpfs, which only root can mount here")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for a full disk: {done.stderr.strip()}")
    try:
        yield TinyDisk(where)
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@dataclass
class LockHolder:
    """Another process holding an exclusive lock on an SQLite database until :meth:`release`."""

    process: subprocess.Popen[str]

    def release(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            self.process.wait(timeout=20)


@contextlib.contextmanager
def hold_lock(path: Path) -> Iterator[LockHolder]:
    """Lock ``path`` from another process (exclusive locking mode and an open write transaction)."""
    code = textwrap.dedent(
        f"""
        import sqlite3, sys
        conn = sqlite3.connect({str(path)!r}, isolation_level=None)
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("CREATE TABLE IF NOT EXISTS lock_holder (x)")
        print("locked", flush=True)
        sys.stdin.read()
        conn.execute("ROLLBACK")
        conn.close()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    holder = LockHolder(proc)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line == "locked", f"the lock holder did not start: {line!r}"
        yield holder
    finally:
        if proc.poll() is None:
            holder.release()
