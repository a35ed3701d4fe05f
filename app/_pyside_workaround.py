"""Keep PySide6 6.12's reference-count slips on None, True and False from crashing Python 3.11.

Measured here (PySide6 6.12.0, abi3 wheel, CPython 3.11.7): every call of a Qt method that returns
``void`` takes one reference from ``None`` that it never gave (``QLabel.setText`` 100 times: ``None``
has 100 references fewer), and emitting a ``Signal(bool)`` does the same to ``True``/``False``.
``None`` starts with about 5,000 references, so a live window reaches zero within seconds to minutes
and the interpreter aborts ("Fatal Python error: none_dealloc"). CPython 3.12+ makes these objects
immortal, which is why the wheel works there. We do what 3.12 does: give them a reference count so
large that no run can use it up. They are static objects that are never freed, so nothing else changes.
"""

from __future__ import annotations

import ctypes
import logging
import platform
import sys

__all__ = ["immortalize_singletons"]

log = logging.getLogger(__name__)

# About 10^12 spare references: at a million slipped references a second, 12 days of running.
_SPARE = 1 << 40
_done = False


def immortalize_singletons() -> bool:
    """Raise the reference counts of None, True and False once; True when it was needed and done."""
    global _done
    if _done:
        return False
    _done = True
    if sys.version_info >= (3, 12) or platform.python_implementation() != "CPython":
        return False  # immortal already, or not reference-counted this way
    if hasattr(sys, "gettotalrefcount"):
        return False  # a debug build lays objects out differently; leave it alone
    for obj in (None, True, False):
        # ob_refcnt is the first field of every object in a release build of CPython < 3.12.
        ctypes.c_ssize_t.from_address(id(obj)).value += _SPARE
    log.debug("None, True and False made effectively immortal (PySide6 refcount workaround)")
    return True
