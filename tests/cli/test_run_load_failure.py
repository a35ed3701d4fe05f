"""``ghostface run`` with a model that cannot load (SFace without ``onnx``): one line, non-zero, at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests._import_failure import REPO, env_without


def test_run_without_onnx_says_what_is_missing_in_one_line(
    hamilton_clip: Path, hamilton_gallery: Path, tmp_path: Path
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            *("-m", "cli"),
            *("run", "--source", str(hamilton_clip), "--gallery", str(hamilton_gallery)),
        ],
        cwd=REPO,
        env=env_without("onnx", tmp_path),
        capture_output=True,
        text=True,
        timeout=60,  # seconds; it takes about one
    )
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr[-3000:]
    assert "the Python package 'onnx' is missing" in errors[0] and "pip install onnx" in errors[0]
    assert "Traceback" not in done.stderr
