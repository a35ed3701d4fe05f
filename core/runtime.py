"""Process-wide thread policy for BLAS and torch, shared by the ``ghostface`` CLI and the desktop app.

Why few threads: the interactive pipeline already runs several busy threads (frame decoding, inference,
the GUI thread), on machines that may have 2 cores. A library that spreads one call over every core then
competes with those threads and with itself: measured on 2 shared cores, torch with 2 intra-op threads
ran RetinaFace 4-50x slower than with 1 (3.3 s instead of 17 ms per LFW image while other work ran),
and a second OpenBLAS thread made matching slower (8.0 ms instead of 4.7 ms median for one face against
100,000 photos). One thread per library call is therefore the default; parallelism comes from the
pipeline's own threads.

Use: call :func:`configure_threads` first thing in an entry point, *before* numpy (or anything that
imports it: cv2, torch) is imported, since OpenBLAS reads its thread count once when it loads. This
module imports neither numpy nor torch for that reason. Models built on torch call
:func:`apply_torch_threads` when they are created, so torch is configured only if and when it is used
(importing it costs seconds at start-up).

A value the user set always wins: ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS``
in the environment are left alone, and ``GHOSTFACE_TORCH_THREADS`` sets torch's intra-op threads.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

from core.errors import GhostFaceError

__all__ = [
    "BLAS_ENV_VARS",
    "TORCH_THREADS_ENV",
    "ThreadPolicy",
    "apply_torch_threads",
    "configure_threads",
    "current_policy",
]

log = logging.getLogger(__name__)

TORCH_THREADS_ENV = "GHOSTFACE_TORCH_THREADS"
# Any of these set by the user means they chose the BLAS/OpenMP thread counts themselves.
BLAS_ENV_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
# Torch's intra-op threads for the interactive pipeline: one (see the module docstring). A batch job
# on an otherwise idle machine may do better with more: GHOSTFACE_TORCH_THREADS=N.
_DEFAULT_TORCH_THREADS = 1


@dataclass(frozen=True, slots=True)
class ThreadPolicy:
    """The thread settings in force.

    Attributes:
        blas_threads: ``OPENBLAS_NUM_THREADS`` as it now is (None when unset, e.g. the user set
            ``OMP_NUM_THREADS`` instead).
        torch_threads: the intra-op thread count torch models get, or None to leave torch's own
            choice alone (the policy is not managing torch, or the user set ``OMP_NUM_THREADS`` /
            ``MKL_NUM_THREADS``, which torch honours itself).
        user_set: the environment variables the user had set, which were kept.
    """

    blas_threads: str | None
    torch_threads: int | None
    user_set: tuple[str, ...]


_lock = threading.Lock()
_policy: ThreadPolicy | None = None
_torch_applied = False


def _torch_threads_from_env() -> int | None:
    raw = os.environ.get(TORCH_THREADS_ENV, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise GhostFaceError(f"{TORCH_THREADS_ENV}={raw!r} is not a thread count: use a whole number >= 1")
    return value


def configure_threads(*, manage_torch: bool = True) -> ThreadPolicy:
    """Set the process's thread policy; call it before numpy is imported. Safe to call again.

    Sets ``OPENBLAS_NUM_THREADS=1`` unless the user set one of :data:`BLAS_ENV_VARS`, and decides how
    many intra-op threads torch models get when :func:`apply_torch_threads` runs: the value of
    ``GHOSTFACE_TORCH_THREADS``, else torch's own choice when the user set ``OMP_NUM_THREADS`` or
    ``MKL_NUM_THREADS``, else 1.

    Args:
        manage_torch: False leaves torch's thread count to someone else (the trainer sets its own
            from its config; a later model creation must not override it).

    Returns:
        the policy now in force.

    Raises:
        GhostFaceError: ``GHOSTFACE_TORCH_THREADS`` is not a whole number >= 1 (the BLAS setting is
            made all the same; the torch policy is left as it was).
    """
    global _policy
    with _lock:
        in_env = tuple(name for name in BLAS_ENV_VARS if os.environ.get(name, "").strip())
        # Called again (an entry point, then its main): what the first call set is not the user's choice.
        user_set = _policy.user_set if _policy is not None else in_env
        if not in_env:
            os.environ["OPENBLAS_NUM_THREADS"] = "1"
    # Checked after the BLAS setting, so that it is in force even when this raises.
    torch_threads = _torch_threads_from_env() if manage_torch else None
    with _lock:
        if (
            manage_torch
            and torch_threads is None
            and not {"OMP_NUM_THREADS", "MKL_NUM_THREADS"} & set(user_set)
        ):
            torch_threads = _DEFAULT_TORCH_THREADS
        _policy = ThreadPolicy(os.environ.get("OPENBLAS_NUM_THREADS"), torch_threads, user_set)
        log.debug("thread policy: %s", _policy)
        return _policy


def current_policy() -> ThreadPolicy | None:
    """The policy set by :func:`configure_threads`, or None when no entry point set one."""
    return _policy


def apply_torch_threads() -> int | None:
    """Give torch the policy's intra-op thread count; called where torch models are created.

    Acts once per process, and only when an entry point called :func:`configure_threads`: a library
    user (or the trainer, which sets its own) keeps whatever torch does.

    Returns:
        the thread count set, or None when nothing was changed.
    """
    global _torch_applied
    policy = _policy
    if policy is None or policy.torch_threads is None:
        return None
    with _lock:
        if _torch_applied:
            return None
        _torch_applied = True
    import torch  # noqa: PLC0415 - only models that already use torch call this

    torch.set_num_threads(policy.torch_threads)
    log.info("torch intra-op threads: %d", policy.torch_threads)
    return policy.torch_threads
