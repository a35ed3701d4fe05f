"""The thread policy, each case in a fresh interpreter: BLAS reads its thread count once, when it loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "GHOSTFACE_TORCH_THREADS")

# An entry point's order: the policy first, then numpy, then a real torch model (RetinaFace), which
# applies the torch part of the policy when it is created.
_PROBE = """
import json, os, sys
from core.runtime import configure_threads, apply_torch_threads
manage = sys.argv[1] == "manage"
if sys.argv[2] == "configure":
    configure_threads(manage_torch=manage)
import numpy
from core.detection import create_detector
create_detector("retinaface-mnet025")
import torch
print(json.dumps({"openblas": os.environ.get("OPENBLAS_NUM_THREADS"), "torch": torch.get_num_threads()}))
"""


def _clean_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _THREAD_VARS}
    env.update(values)
    return env


def _probe(env: dict[str, str], *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_default_is_one_blas_and_one_torch_thread() -> None:
    assert _probe(_clean_env(), "manage", "configure") == {"openblas": "1", "torch": 1}


def test_the_environment_overrides_the_defaults() -> None:
    got = _probe(_clean_env(GHOSTFACE_TORCH_THREADS="3", OPENBLAS_NUM_THREADS="2"), "manage", "configure")
    assert got == {"openblas": "2", "torch": 3}


def test_a_user_openmp_setting_is_kept_for_blas_and_torch() -> None:
    # OpenBLAS and torch both honour OMP_NUM_THREADS themselves: nothing is set over it.
    got = _probe(_clean_env(OMP_NUM_THREADS="2"), "manage", "configure")
    assert got == {"openblas": None, "torch": 2}


def test_torch_is_left_alone_when_not_managed_or_not_configured() -> None:
    # The trainer sets torch's threads from its own config; a library user keeps torch's choice.
    trainer = _probe(_clean_env(OMP_NUM_THREADS="2"), "trainer", "configure")
    library = _probe(_clean_env(OMP_NUM_THREADS="2"), "manage", "skip")
    assert trainer["torch"] == 2 and library["torch"] == 2


@pytest.mark.parametrize("value", ["zero", "0"])
def test_a_bad_thread_count_is_a_clear_error_in_both_entry_points(value: str, tmp_path: Path) -> None:
    env = _clean_env(GHOSTFACE_TORCH_THREADS=value, QT_QPA_PLATFORM="offscreen")
    cli = subprocess.run(
        [sys.executable, "-m", "cli", "bench", "--source", str(tmp_path / "none.mp4")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert cli.returncode == 1
    assert "GHOSTFACE_TORCH_THREADS" in cli.stderr and "Traceback" not in cli.stderr
    app = subprocess.run(
        [sys.executable, str(REPO / "main.py"), "--source", str(tmp_path / "none.mp4")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert app.returncode == 2
    assert "GHOSTFACE_TORCH_THREADS" in app.stderr and "Traceback" not in app.stderr
