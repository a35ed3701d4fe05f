"""A soak run: a video looped through the whole engine for a given time, resources sampled as it goes.

It runs what a long day at a reception desk runs: the full pipeline (detection, alignment, embedding,
tracking, matching, events), the gallery with its cache, the event history and the built-in plugins
(attendance log and snapshots) on their dispatch threads. Every ``interval_s`` it samples what would
grow if something leaked: resident memory, threads, open file descriptors, and the size of every file
GhostFace writes (history, gallery cache, plugin data). Flat lines, or lines bounded by a stated cache
(history retention), are the pass mark.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core._perms import make_private_dir
from core.errors import GhostFaceError
from core.history import History
from core.settings import Settings

if TYPE_CHECKING:
    from core.gallery import Gallery
    from core.pipeline import Pipeline

__all__ = ["SoakReport", "SoakSample", "measure", "run_soak"]

log = logging.getLogger(__name__)

# The plugins a soak switches on: the built-ins that write files. The webhook needs a URL to post to
# and the desktop notification belongs to the GUI, so neither runs here.
SOAK_PLUGINS = ("attendance", "snapshot")


@dataclass(frozen=True, slots=True)
class SoakSample:
    """One measurement.

    Attributes:
        elapsed_s: seconds since the soak started.
        frames: frames processed so far.
        events: recognition events published so far.
        fps: frames per second since the previous sample.
        rss_mb: resident memory of the process (MiB; None where the platform does not say).
        threads: threads of the process (the OS count where known, else Python's).
        open_files: open file descriptors (None where the platform does not say).
        history_mb: the history database with its -wal and -shm (MiB).
        cache_mb: the gallery's embedding cache with its -wal and -shm (MiB).
        plugin_data_mb: everything the plugins wrote in the data folder (MiB): attendance logs,
            snapshots, ``plugin-data``.
        history_rows: events in the history.
        history_pending: events waiting in memory for the history.
    """

    elapsed_s: float
    frames: int
    events: int
    fps: float
    rss_mb: float | None
    threads: int
    open_files: int | None
    history_mb: float
    cache_mb: float
    plugin_data_mb: float
    history_rows: int
    history_pending: int

    def line(self) -> str:
        """One human line."""
        rss = f"{self.rss_mb:.0f} MiB" if self.rss_mb is not None else "?"
        files = str(self.open_files) if self.open_files is not None else "?"
        return (
            f"{self.elapsed_s / 60:5.1f} min  frames {self.frames:6d}  {self.fps:5.1f} fps  "
            f"events {self.events:5d}  RSS {rss}  threads {self.threads}  open files {files}  "
            f"history {self.history_mb:.2f} MiB ({self.history_rows} rows, {self.history_pending} waiting)  "
            f"gallery cache {self.cache_mb:.2f} MiB  plugin data {self.plugin_data_mb:.2f} MiB"
        )


@dataclass(frozen=True, slots=True)
class SoakReport:
    """What a soak run measured.

    Attributes:
        samples: one per interval, the first at the start, the last at the end.
        plugins: each plugin's name with its calls, failures and dropped events at the end.
        errors: frames that raised (the run goes on after one).
    """

    samples: tuple[SoakSample, ...]
    plugins: dict[str, dict[str, int | str]] = field(default_factory=dict)
    errors: int = 0


def _rss_mb() -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    try:
        import resource  # noqa: PLC0415 - POSIX only

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # peak, on macOS in bytes
    except (ImportError, OSError):
        return None


def _os_threads() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return threading.active_count()


def _open_files() -> int | None:
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(folder))
        except OSError:
            continue
    return None


def _size_mb(*files: Path) -> float:
    total = 0
    for base in files:
        for path in (base, Path(f"{base}-wal"), Path(f"{base}-shm")):
            try:
                total += path.stat().st_size
            except OSError:
                pass
    return total / (1024.0 * 1024.0)


# Folders of the data folder that are not written by plugins (the history is measured on its own).
_NOT_PLUGIN_DATA = frozenset({"models", "plugins", "gallery"})


def _plugin_files_mb(data_dir: Path) -> float:
    """What the plugins wrote in the data folder, in MiB.

    That is ``plugin-data`` and the folders the built-ins default to (``attendance``, ``snapshots``):
    everything but models, plugin code, the gallery and the history.
    """
    try:
        entries = list(data_dir.iterdir())
    except OSError:
        return 0.0
    return sum(_tree_mb(p) for p in entries if p.is_dir() and p.name not in _NOT_PLUGIN_DATA)


def _tree_mb(folder: Path) -> float:
    total = 0
    for root, _, names in os.walk(folder):
        for name in names:
            try:
                total += (Path(root) / name).stat().st_size
            except OSError:
                pass
    return total / (1024.0 * 1024.0)


def measure(
    elapsed_s: float,
    frames: int,
    events: int,
    fps: float,
    history: History,
    cache_path: Path,
    data_dir: Path,
) -> SoakSample:
    """Sample the process and the files it writes."""
    return SoakSample(
        elapsed_s=elapsed_s,
        frames=frames,
        events=events,
        fps=fps,
        rss_mb=_rss_mb(),
        threads=_os_threads(),
        open_files=_open_files(),
        history_mb=_size_mb(history.path),
        cache_mb=_size_mb(cache_path),
        plugin_data_mb=_plugin_files_mb(data_dir),
        history_rows=history.count(),
        history_pending=history.pending,
    )


def run_soak(
    source: str | Path,
    gallery_dir: str | Path,
    minutes: float,
    *,
    interval_s: float = 60.0,
    settings: Settings | None = None,
    on_sample: Callable[[SoakSample], None] | None = None,
    stop: threading.Event | None = None,
    work_dir: Path | None = None,
) -> SoakReport:
    """Loop ``source`` through the full engine for ``minutes``; sample every ``interval_s`` seconds.

    Args:
        source: a video file (looped) or any source :func:`core.capture.open_source` takes.
        gallery_dir: the gallery folder.
        minutes: how long to run.
        interval_s: seconds between samples.
        settings: engine settings (default: the defaults); the history and the plugins of
            :data:`SOAK_PLUGINS` are switched on whatever they say.
        on_sample: called with each sample as it is taken (the CLI prints it).
        stop: set it to end the run early (the report is still made).
        work_dir: where the history, the embedding cache and the plugins' files go. None: a new
            private temporary folder, removed at the end, so that a soak never fills the user's own
            history and attendance logs with the looped clip.

    Raises:
        GhostFaceError: the source, the gallery or a model cannot be opened.
    """
    from core.capture import open_source  # noqa: PLC0415 - heavy imports only when a soak runs

    if minutes <= 0 or interval_s <= 0:
        raise GhostFaceError("a soak needs a positive duration and interval")
    settings = settings or Settings()
    enabled = {**settings.plugins.enabled, **dict.fromkeys(SOAK_PLUGINS, True)}
    settings = settings.replace(plugins={"enabled": enabled})
    stop = stop or threading.Event()

    temporary = work_dir is None
    root = Path(tempfile.mkdtemp(prefix="ghostface-soak-")) if work_dir is None else Path(work_dir)
    data_dir = make_private_dir(root / "data")
    history = History(data_dir / "history.sqlite3")
    bus = _soak_bus(settings, history, data_dir)
    pipeline, gallery = _soak_pipeline(settings, source, gallery_dir, root)
    run = _SoakRun(history, gallery.cache_path, data_dir, on_sample)
    feed = None
    try:
        gallery.sync()
        pipeline.set_gallery(gallery)
        feed = open_source(source, loop=True)
        run.loop(feed, pipeline, bus, minutes * 60.0, interval_s, stop)
        bus.publish_many(pipeline.flush_events())
    finally:
        status = _shut_down(feed, bus, gallery, history, root if temporary else None)
    return SoakReport(tuple(run.samples), status, run.errors)


def _soak_pipeline(
    settings: Settings, source: str | Path, gallery_dir: str | Path, root: Path
) -> tuple[Pipeline, Gallery]:
    """The pipeline, and the gallery of ``gallery_dir`` opened with its models, cached under ``root``."""
    from core.engine import open_gallery  # noqa: PLC0415 - heavy imports only when a soak runs
    from core.pipeline import Pipeline

    pipeline = Pipeline(settings, source=str(source))
    gallery = open_gallery(
        settings.replace(gallery_dir=str(gallery_dir)),
        pipeline.detector,
        pipeline.embedder,
        cache_path=make_private_dir(root / "cache") / "gallery.sqlite3",
    )
    return pipeline, gallery


def _shut_down(
    feed: Any, bus: Any, gallery: Gallery, history: History, temporary_root: Path | None
) -> dict[str, dict[str, int | str]]:
    """Close the source, stop the plugins, close the gallery and history, remove a temporary folder.

    Returns:
        each plugin's name with its calls, failures, dropped events and state at the end.
    """
    if feed is not None:
        feed.close()
    bus.stop(timeout=5.0)
    status: dict[str, dict[str, int | str]] = {
        s.name: {"calls": s.calls, "failures": s.failures, "dropped": s.dropped, "state": str(s.state)}
        for s in bus.status()
    }
    gallery.close()
    history.close()
    if temporary_root is not None:
        shutil.rmtree(temporary_root, ignore_errors=True)
    return status


def _soak_bus(settings: Settings, history: History, data_dir: Path) -> Any:
    """The built-in plugins of :data:`SOAK_PLUGINS` and the history recorder on a started bus."""
    from core.events import BusContext, EventBus  # noqa: PLC0415 - heavy imports only when a soak runs
    from core.plugins import discover_plugins, load_plugins

    plugins = load_plugins(discover_plugins(external=False), settings.plugins)
    plugins = [p for p in plugins if p.name in SOAK_PLUGINS]
    ev = settings.events
    plugins.append(history.recorder(ev.history_max_days, ev.history_max_mb))
    bus = EventBus(plugins, settings.plugins.queue_size, settings.plugins.max_failures)
    bus.start(BusContext(data_dir=data_dir))
    return bus


class _SoakRun:
    """The frames, events and errors of one soak, and its samples."""

    def __init__(
        self,
        history: History,
        cache_path: Path,
        data_dir: Path,
        on_sample: Callable[[SoakSample], None] | None,
    ) -> None:
        self.history, self.cache_path, self.data_dir, self.on_sample = history, cache_path, data_dir, on_sample
        self.frames = self.events = self.errors = 0
        self.samples: list[SoakSample] = []
        self.start = self.last_time = time.monotonic()
        self.last_frames = 0

    def sample(self, now: float) -> None:
        """Take, log and hand on one sample (frames per second since the previous one)."""
        fps = (self.frames - self.last_frames) / (now - self.last_time) if now > self.last_time else 0.0
        self.last_frames, self.last_time = self.frames, now
        taken = measure(
            now - self.start, self.frames, self.events, fps, self.history, self.cache_path, self.data_dir
        )
        self.samples.append(taken)
        log.info("soak: %s", taken.line())
        if self.on_sample is not None:
            self.on_sample(taken)

    def loop(
        self, feed: Any, pipeline: Any, bus: Any, seconds: float, interval_s: float, stop: threading.Event
    ) -> None:
        """Process the looping ``feed`` for ``seconds`` (or until ``stop``), sampling every ``interval_s``."""
        self.start = self.last_time = time.monotonic()
        deadline = self.start + seconds
        self.sample(self.start)
        next_sample = self.start + interval_s
        for frame in feed:
            if stop.is_set():
                break
            try:
                result = pipeline.process(
                    frame.image, frame.index, frame.timestamp, frame.decode_ms, stream_id=frame.stream_id
                )
            except Exception as exc:  # noqa: BLE001 - as in the app: one bad frame does not end the run
                self.errors += 1
                log.warning("soak: frame %d failed: %s", frame.index, exc)
                continue
            self.frames += 1
            if result.events:
                self.events += len(result.events)
                bus.publish_many(result.events)
            now = time.monotonic()
            if now >= next_sample or now >= deadline:
                self.sample(now)
                next_sample += interval_s
            if now >= deadline:
                break
