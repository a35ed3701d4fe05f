"""Built-in plugin: save a JPEG of the face or the whole frame for each event, with retention."""

from __future__ import annotations

import logging
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from core._atomic import atomic_write_bytes
from core.plugins import Setting
from core.types import EventKind, RecognitionEvent

__all__ = ["SnapshotSaver", "parse_kinds"]

log = logging.getLogger(__name__)

MODES = ("face", "frame")


def parse_kinds(text: object) -> frozenset[EventKind]:
    """``"recognized, unknown"`` (or a list) as a set of kinds.

    Raises:
        ValueError: a name that is not an event kind.
    """
    items = text if isinstance(text, list | tuple | set | frozenset) else str(text or "").split(",")
    kinds: set[EventKind] = set()
    for item in items:
        name = str(item).strip().lower()
        if not name:
            continue
        try:
            kinds.add(EventKind(name))
        except ValueError:
            valid = ", ".join(k.value for k in EventKind)
            raise ValueError(f"{name!r} is not an event kind (use {valid})") from None
    return frozenset(kinds)


def _safe(name: str) -> str:
    # A person's name goes into a file name: keep letters, digits, '-', '.', '_'.
    return re.sub(r"[^\w.-]+", "_", name).strip("._")[:60] or "person"


class SnapshotSaver:
    """Writes ``<time>_<kind>_<person>_t<track>.jpg`` for each chosen event.

    ``face`` mode saves the event's thumbnail; ``frame`` mode the whole frame, which the event carries
    when the event setting "Attach the frame to events" is on (otherwise the face is saved, with one
    warning). After each save, the oldest files beyond ``keep_count`` and files older than
    ``keep_days`` are removed (0 keeps all).

    Settings:
        mode: ``face`` or ``frame``.
        folder: where the images go; empty for ``<data folder>/snapshots``.
        kinds: comma-separated event kinds to save.
        keep_count: most images kept.
        keep_days: days an image is kept.
    """

    NAME = "snapshot"
    SETTINGS: dict[str, Any] = {
        "mode": Setting("face", choices=("face", "frame"), help="Save the face only, or the whole frame."),
        "folder": Setting(
            "", path="folder", help="Where the images go; empty: the snapshots folder of GhostFace."
        ),
        "kinds": Setting("recognized,unknown", label="Events", help="Comma-separated event kinds to save."),
        "keep_count": Setting(500, min=0, label="Images kept", help="The most images kept; 0 keeps all."),
        "keep_days": Setting(30, min=0, label="Keep images for", help="Days an image is kept; 0 keeps all."),
    }

    def __init__(self) -> None:
        self.folder: Path | None = None
        self.saved = 0
        self._mode = "face"
        self._kinds: frozenset[EventKind] = frozenset()
        self._keep_count = 0
        self._keep_days = 0.0
        self._warned_no_frame = False

    def on_start(self, context: Any) -> None:
        """Read and check the mode, event kinds and retention, and create the snapshot folder.

        Raises:
            ValueError: an unknown mode or a negative retention setting.
        """
        s = context.settings
        mode = str(s.get("mode", "face")).strip().lower()
        if mode not in MODES:
            raise ValueError(f"snapshot mode must be 'face' or 'frame', not {mode!r}")
        keep_count, keep_days = int(s.get("keep_count", 500)), float(s.get("keep_days", 30))
        if keep_count < 0 or keep_days < 0:
            raise ValueError("keep_count and keep_days must be 0 (keep all) or more")
        folder_text = str(s.get("folder", "") or "").strip()
        self.folder = (
            Path(folder_text).expanduser() if folder_text else Path(context.app_data_dir) / "snapshots"
        )
        self.folder.mkdir(parents=True, exist_ok=True)
        self._mode, self._kinds = mode, parse_kinds(s.get("kinds", "recognized,unknown"))
        self._keep_count, self._keep_days = keep_count, keep_days

    def on_event(self, event: RecognitionEvent) -> None:
        """Save the face (or the whole frame) of an event of a chosen kind as a JPEG, then prune old ones.

        Raises:
            RuntimeError: the plugin was not started.
        """
        if self.folder is None:
            raise RuntimeError("the snapshot saver got an event before on_start")
        if event.kind not in self._kinds:
            return
        data = event.thumbnail
        if self._mode == "frame":
            if event.frame_jpeg:
                data = event.frame_jpeg
            elif not self._warned_no_frame:
                self._warned_no_frame = True
                log.warning("snapshot: events carry no frame (attach_frame is off); saving faces instead")
        if not data:
            return
        stamp = datetime.fromtimestamp(event.time).strftime("%Y%m%d-%H%M%S-%f")[:-3]
        name = f"{stamp}_{event.kind.value}_{_safe(event.person or 'unknown')}_t{event.track_id}.jpg"
        atomic_write_bytes(self.folder / name, data)
        self.saved += 1
        self.prune()

    def prune(self) -> int:
        """Apply the retention settings now; returns how many images were removed."""
        if self.folder is None:
            return 0
        files = sorted(p for p in self.folder.glob("*.jpg") if p.is_file())  # names start with the time
        doomed: list[Path] = []
        if self._keep_days > 0:
            cutoff = time.time() - self._keep_days * 86400.0
            doomed += [p for p in files if p.stat().st_mtime < cutoff]
        if self._keep_count > 0:
            remaining = [p for p in files if p not in doomed]
            doomed += remaining[: max(0, len(remaining) - self._keep_count)]
        removed = 0
        for path in doomed:
            try:
                path.unlink()
                removed += 1
            except OSError as exc:
                log.warning("snapshot: cannot remove %s: %s", path, exc)
        return removed
