"""Shared fixtures: every test runs against its own user folders, and real data from ../shared."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Before anything imports Qt: without a display Qt would abort with a misleading xcb message.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GHOSTFACE_SHARED", REPO.parent / "shared"))
os.environ.setdefault("GHOSTFACE_MODEL_PATH", str(SHARED / "models"))
# Nothing downloads in tests: a missing model is an error, never a network call.
os.environ.setdefault("GHOSTFACE_OFFLINE", "1")


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared test data not found at {path} (set GHOSTFACE_SHARED to its folder)")
    return path


@pytest.fixture(autouse=True)
def _fresh_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point config, data, cache and plugins at a temporary folder: a user's own are never touched."""
    home = tmp_path_factory.mktemp("ghostface-home")
    monkeypatch.setenv("GHOSTFACE_HOME", str(home))
    return home


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """PyTorch models in tests run on one intra-op thread, as the app runs them (core/runtime.py).

    On few, shared cores, intra-op threads competing with other processes spin and turn a 30 ms
    forward pass into seconds.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return _need(SHARED)


@pytest.fixture(scope="session")
def demo_dir(shared_dir: Path) -> Path:
    return _need(shared_dir / "data" / "demo")


@pytest.fixture(scope="session")
def hamilton_clip(demo_dir: Path) -> Path:
    return _need(demo_dir / "short_hamilton_clip.mp4")


@pytest.fixture(scope="session")
def lfw_dir(shared_dir: Path) -> Path:
    return _need(shared_dir / "data" / "lfw")


@pytest.fixture(scope="session")
def train_dir(shared_dir: Path) -> Path:
    return _need(shared_dir / "data" / "train")


@pytest.fixture(scope="session")
def models_dir(shared_dir: Path) -> Path:
    return _need(shared_dir / "models")


@pytest.fixture
def hamilton_gallery(tmp_path: Path, demo_dir: Path) -> Path:
    """A gallery with the two people of the Hamilton clip: Barack Obama (2 photos) and Lin-Manuel Miranda."""
    root = tmp_path / "gallery"
    (root / "Barack Obama").mkdir(parents=True)
    (root / "Lin-Manuel Miranda").mkdir(parents=True)
    shutil.copy(demo_dir / "obama.jpg", root / "Barack Obama" / "obama.jpg")
    shutil.copy(demo_dir / "obama2.jpg", root / "Barack Obama" / "obama2.jpg")
    shutil.copy(demo_dir / "lin-manuel-miranda.png", root / "Lin-Manuel Miranda" / "lin-manuel-miranda.png")
    return root


@pytest.fixture
def demo_gallery(demo_dir: Path, tmp_path: Path) -> Path:
    """The demo photos' own gallery (``knn_examples/train``: Obama, Biden, Kit Harington, Rose Leslie, ...)
    plus Lin-Manuel Miranda, folder names as they come."""
    root = tmp_path / "gallery"
    shutil.copytree(demo_dir / "knn_examples" / "train", root)
    (root / "lin-manuel-miranda").mkdir()
    shutil.copy(demo_dir / "lin-manuel-miranda.png", root / "lin-manuel-miranda")
    return root


@pytest.fixture(scope="session")
def doorbell_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``ghostface-doorbell`` 1.0, an entry-point plugin distribution built and installed by pip into a
    folder of its own (put it on ``sys.path`` to install it); built once per test session."""
    from tests.core._plugin_kit import DOORBELL, build_distribution

    return build_distribution(
        tmp_path_factory.mktemp("doorbell"),
        "ghostface-doorbell",
        "ghostface_doorbell",
        DOORBELL,
        {"doorbell": "ghostface_doorbell:Doorbell"},
    )


@pytest.fixture(scope="session")
def pg_server() -> Iterator[object]:
    """A real PostgreSQL server for the session (tests/_postgres.py); skipped where none is installed."""
    from tests import _postgres

    if _postgres.find_bin_dir() is None:
        pytest.skip("PostgreSQL is not installed (no initdb/pg_ctl): the shared-store tests need it")
    # Not under pytest's temporary folder: as root that is private to root, and the server runs as postgres.
    base = Path(tempfile.mkdtemp(prefix="ghostface-pg-"))
    try:
        server = _postgres.start_server(base)
    except subprocess.CalledProcessError as exc:
        log_file = base / "server.log"
        detail = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
        raise RuntimeError(f"the test PostgreSQL did not start: {exc.stderr!r} {detail}") from exc
    yield server
    server.stop()
    shutil.rmtree(base, ignore_errors=True)
