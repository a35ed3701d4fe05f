"""Issue 12, points 7 and 8: what runs is what was verified; read-only folders are skipped, not fatal."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core import paths
from core.embedding import create_embedder
from core.embedding.sface import CLEANED_SHA256
from core.modelstore import get_model_spec
from tests._disks import tiny_disk

REPO = Path(__file__).resolve().parents[2]


def test_a_tampered_cached_sface_copy_is_not_loaded(demo_dir: Path) -> None:
    first = create_embedder("sface")
    cleaned = first.cleaned_model_path
    pinned = CLEANED_SHA256[get_model_spec("sface").sha256 or ""]
    assert hashlib.sha256(cleaned.read_bytes()).hexdigest() == pinned
    crop = np.random.default_rng(1).integers(0, 255, (2, 112, 112, 3), dtype=np.uint8)
    expected = first.embed(crop)

    # A different, valid network where the cleaned copy was: the other model the store holds.
    yunet = get_model_spec("yunet")
    from core.modelstore import default_store

    cleaned.write_bytes(default_store().load_verified(yunet.id).data)
    again = create_embedder("sface")
    np.testing.assert_allclose(again.embed(crop), expected, atol=1e-6)
    assert hashlib.sha256(cleaned.read_bytes()).hexdigest() == pinned  # rebuilt from the original


def _readonly_home(root: Path) -> None:
    for name in ("config", "data", "cache"):
        (root / name).mkdir(parents=True, exist_ok=True)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_read_only_data_and_cache_folders_are_skipped_with_a_warning_not_an_errno(
    tmp_path: Path, demo_dir: Path
) -> None:
    gallery = tmp_path / "gallery"
    (gallery / "Barack Obama").mkdir(parents=True)
    shutil.copy(demo_dir / "obama.jpg", gallery / "Barack Obama" / "obama.jpg")
    with tiny_disk(tmp_path / "home", "1m") as disk:
        _readonly_home(disk.root)
        disk.read_only()
        env = {**os.environ, "GHOSTFACE_HOME": str(disk.root), "PYTHONPATH": str(REPO)}
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "cli",
                "run",
                "--source",
                str(demo_dir / "obama2.jpg"),
                "--gallery",
                str(gallery),
                "--json",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        disk.read_only(False)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["recognized"] == ["Barack Obama"]
    assert "Errno" not in done.stderr and "Traceback" not in done.stderr
    models = str(disk.root / "data" / "models")
    assert f"the user model folder {models} cannot be used" in done.stderr
    assert "chmod u+rwx" in done.stderr
    assert str(disk.root / "cache") in done.stderr  # the gallery cache and the model cache say where


def test_the_user_model_folder_is_optional(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A data folder that is a file: the models folder in it cannot exist; models still resolve.
    home = tmp_path / "home"
    home.mkdir()
    (home / "data").write_text("not a folder")
    monkeypatch.setenv("GHOSTFACE_HOME", str(home))
    from core.modelstore import ModelStore

    store = ModelStore()
    assert store.resolve("yunet").is_file()
    assert store.search_folders()[0] == paths.models_dir(create=False)
