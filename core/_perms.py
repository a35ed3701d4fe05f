"""Files and folders private to the user: folders 0700, files 0600 (POSIX; Windows has per-user ACLs).

The history holds names and face thumbnails and the gallery cache holds face embeddings: personal data
that other accounts on the machine must not read. Only what the user owns is changed; a folder the user
chose that belongs to someone else is left alone.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

__all__ = ["make_private_dir", "private_dir", "private_file"]

_POSIX = os.name == "posix"


def _ours(st: os.stat_result) -> bool:
    return not hasattr(os, "getuid") or st.st_uid == os.getuid()


def private_file(path: Path) -> None:
    """Make an existing file of ours 0600 (no-op when missing, not ours, or not possible)."""
    if not _POSIX:
        return
    with contextlib.suppress(OSError):
        st = os.lstat(path)
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077 and _ours(st):
            os.chmod(path, 0o600)


def private_dir(path: Path) -> None:
    """Make an existing folder of ours 0700 (no-op when missing, not ours, or not possible)."""
    if not _POSIX:
        return
    with contextlib.suppress(OSError):
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode) and st.st_mode & 0o077 and _ours(st):
            os.chmod(path, 0o700)


def make_private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents, each 0700) and make it 0700; returns it.

    Raises:
        OSError: the folder cannot be created.
    """
    path = Path(path)
    if not path.is_dir():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    private_dir(path)
    return path
