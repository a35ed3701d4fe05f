"""The soak run: the demo clip looped through the whole engine, with history and plugins, sampled."""

from __future__ import annotations

from pathlib import Path

from core import paths
from core.history import History
from core.soak import SoakSample, run_soak


def test_a_short_soak_samples_memory_threads_files_and_databases(
    hamilton_clip: Path,
    hamilton_gallery: Path,
    tmp_path: Path,
) -> None:
    seen: list[SoakSample] = []
    work = tmp_path / "soak"
    report = run_soak(
        hamilton_clip, hamilton_gallery, minutes=0.15, interval_s=3.0, on_sample=seen.append, work_dir=work
    )
    assert list(report.samples) == seen and len(seen) >= 3
    first, last = seen[0], seen[-1]
    assert first.frames == 0 and last.frames > 20 and last.events > 0
    assert last.elapsed_s >= 8.5
    assert all(s.rss_mb and s.rss_mb > 50 and s.threads >= 3 and s.open_files for s in seen)
    assert last.cache_mb > 0 and last.history_mb > 0 and last.plugin_data_mb > 0
    assert report.errors == 0
    assert {"attendance", "snapshot", "history"} <= set(report.plugins)
    assert all(p["failures"] == 0 for p in report.plugins.values())
    with History(work / "data" / "history.sqlite3") as history:
        assert history.count() >= last.events  # events flushed at the end are in it too
    assert list((work / "data" / "attendance").glob("attendance-*.csv"))
    # The user's own history and attendance log are not touched by a soak.
    assert not paths.history_path().exists() and not (paths.data_dir() / "attendance").exists()
    assert "RSS" in last.line() and "open files" in last.line()
