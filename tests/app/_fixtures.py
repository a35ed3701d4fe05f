"""Fixtures shared by the app tests: a small real gallery, and a check that no worker thread outlives a test."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def hamilton_gallery(tmp_path: Path, demo_dir: Path) -> Path:
    """A gallery with the two people of the Hamilton clip: Obama and Lin-Manuel Miranda."""
    root = tmp_path / "gallery"
    (root / "Barack Obama").mkdir(parents=True)
    (root / "Lin-Manuel Miranda").mkdir(parents=True)
    shutil.copy(demo_dir / "obama.jpg", root / "Barack Obama" / "obama.jpg")
    shutil.copy(demo_dir / "obama2.jpg", root / "Barack Obama" / "obama2.jpg")
    shutil.copy(demo_dir / "lin-manuel-miranda.png", root / "Lin-Manuel Miranda" / "lin-manuel-miranda.png")
    return root


@pytest.fixture
def no_leaked_threads() -> Iterator[None]:
    """Fail when a test leaves a Python-visible thread or a running QThread behind."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    assert not leaked, f"threads left running: {leaked}"
