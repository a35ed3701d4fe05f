"""Fixtures of the gallery tests: the models a gallery embeds with, and a gallery of the demo photos."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.detection import create_detector
from core.embedding import create_embedder


@pytest.fixture(scope="module")
def models() -> tuple:
    """A detector and an embedder, built once per test module (a module may define its own instead)."""
    return create_detector("yunet", max_side=640), create_embedder("sface")


@pytest.fixture()
def knn_gallery(demo_dir: Path, tmp_path: Path) -> Path:
    """A copy of the demo photos' gallery (``knn_examples/train``), one folder per person."""
    root = tmp_path / "gallery"
    shutil.copytree(demo_dir / "knn_examples" / "train", root)
    return root
