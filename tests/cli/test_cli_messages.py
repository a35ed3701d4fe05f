"""Issue 12, point 10 at the command line: one clear line per problem, and a soak that reports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def small_gallery(demo_dir: Path, tmp_path: Path) -> Path:
    root = tmp_path / "gallery"
    (root / "Barack Obama").mkdir(parents=True)
    shutil.copy(demo_dir / "obama.jpg", root / "Barack Obama" / "obama.jpg")
    return root


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_threshold_out_of_range_is_one_clear_line(
    capsys: pytest.CaptureFixture[str], demo_dir: Path, small_gallery: Path
) -> None:
    code, _, err = _run(
        capsys,
        "run",
        "--source",
        str(demo_dir / "obama2.jpg"),
        "--gallery",
        str(small_gallery),
        "--threshold",
        "5",
    )
    assert code == 1
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines == [
        "error: invalid option value: recognition.similarity_threshold = 5.0: Input should be "
        "less than or equal to 1"
    ]


def test_settings_warnings_are_printed_once(demo_dir: Path, small_gallery: Path, tmp_path: Path) -> None:
    # A real process: what a person sees on the terminal, logging set up as the command sets it up.
    bad = tmp_path / "settings.json"
    bad.write_text(json.dumps({"recognition": {"similarity_threshold": 7}}))
    argv = [
        "run",
        "--source",
        str(demo_dir / "obama2.jpg"),
        "--gallery",
        str(small_gallery),
        "--settings",
        str(bad),
    ]
    done = subprocess.run(
        [sys.executable, "-m", "cli", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("similarity_threshold") == 1, done.stderr


def test_an_events_file_that_cannot_be_written_is_named(
    capsys: pytest.CaptureFixture[str], demo_dir: Path, small_gallery: Path, tmp_path: Path
) -> None:
    target = tmp_path / "a-folder"
    target.mkdir()
    code, _, err = _run(
        capsys,
        "run",
        "--source",
        str(demo_dir / "obama2.jpg"),
        "--gallery",
        str(small_gallery),
        "--events",
        str(target),
    )
    assert code == 1 and f"cannot write the events file {target}" in err and "Errno" not in err


def test_camera_minus_one_is_a_camera_index_not_a_missing_file(
    capsys: pytest.CaptureFixture[str], small_gallery: Path
) -> None:
    code, _, err = _run(capsys, "run", "--source", "-1", "--gallery", str(small_gallery))
    assert code == 1 and "camera index must be 0 or more" in err and "no such file" not in err


def test_no_opencv_target_warning_on_a_command(
    capfd: pytest.CaptureFixture[str], demo_dir: Path, small_gallery: Path
) -> None:
    code = main(["run", "--source", str(demo_dir / "obama2.jpg"), "--gallery", str(small_gallery)])
    _, err = capfd.readouterr()  # capfd: OpenCV writes to the file descriptor, not sys.stderr
    assert code == 0 and "setPreferableTarget" not in err


def test_soak_runs_the_clip_and_prints_a_sample_per_interval(
    capsys: pytest.CaptureFixture[str], hamilton_clip: Path, small_gallery: Path
) -> None:
    code, out, _ = _run(
        capsys,
        "soak",
        "--source",
        str(hamilton_clip),
        "--gallery",
        str(small_gallery),
        "--minutes",
        "0.1",
        "--interval",
        "2",
        "--json",
    )
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    samples, summary = rows[:-1], rows[-1]
    assert len(samples) >= 3 and samples[-1]["frames"] > 0
    for key in ("rss_mb", "threads", "open_files", "history_mb", "cache_mb", "plugin_data_mb"):
        assert key in samples[0]
    assert summary["frame_errors"] == 0 and "history" in summary["plugins"]
