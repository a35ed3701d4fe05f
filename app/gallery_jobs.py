"""How a dialog follows the gallery jobs it submits: their results and failures, until it closes.

The dialogs that run a gallery job and wait for its outcome (assigning a face, picking a face, reviewing
a person) all listen to the controller's ``job_finished`` and ``job_failed`` while open and stop when they
close, so that a closed dialog is never called for a later job.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from app.gallery_worker import GalleryController

__all__ = ["listen_to_jobs", "stop_listening_to_jobs"]


def _pairs(
    controller: GalleryController, on_finished: Callable[..., Any], on_failed: Callable[..., Any]
) -> tuple[tuple[Any, Callable[..., Any]], ...]:
    return ((controller.job_finished, on_finished), (controller.job_failed, on_failed))


def listen_to_jobs(
    controller: GalleryController, on_finished: Callable[..., Any], on_failed: Callable[..., Any]
) -> None:
    """Call ``on_finished(result)`` when a gallery job ends and ``on_failed(job, exc)`` when one fails."""
    for signal, slot in _pairs(controller, on_finished, on_failed):
        signal.connect(slot)


def stop_listening_to_jobs(
    controller: GalleryController, on_finished: Callable[..., Any], on_failed: Callable[..., Any]
) -> None:
    """Undo :func:`listen_to_jobs`; safe to call twice (a dialog's ``done()`` can run twice)."""
    for signal, slot in _pairs(controller, on_finished, on_failed):
        # Already disconnected (done() twice): older PySide raises, 6.12 only warns; both mean "nothing to do".
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                signal.disconnect(slot)
            except (RuntimeError, TypeError):
                pass
