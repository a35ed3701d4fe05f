"""Fixtures of the app tests: a small real gallery, and a check that no worker thread outlives a test."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from app.threads import running_threads


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail when an app test leaves a Python thread (daemon or not) or a worker's QThread running."""
    before = set(threading.enumerate())
    yield

    def leaked() -> list[str]:
        # Daemon threads count: every thread the app starts is one (frame reader, plugin dispatch).
        # Python's stand-ins for threads it did not start (a QThread that ran Python code) never end,
        # so QThreads are checked through the controllers' own list instead.
        python = [
            t.name
            for t in threading.enumerate()
            if t not in before and t.is_alive() and not isinstance(t, threading._DummyThread)
        ]
        return python + [f"QThread {name}" for name in running_threads()]

    deadline = time.monotonic() + 5.0
    while leaked() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not leaked(), f"threads left running: {leaked()}"
