"""What the trainer tab remembers between sessions: its form, and the last run (offered for Resume).

Both are kept as JSON in ``trainer.ini`` in the config folder (through ``QSettings``, like the window's
geometry), so the types come back as they were saved and a damaged entry is simply forgotten.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

__all__ = ["LastRun", "TrainerMemory", "describe_last_run"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LastRun:
    """The run the tab started last.

    Attributes:
        run_dir: its run folder.
        state: ``"running"`` (the app closed or failed during it), ``"stopped"``, ``"finished"`` or
            ``"failed"``.
        epochs_completed: whole epochs trained (-1: not known, the app closed before it said).
        epochs: epochs planned.
        best_accuracy: best held-out accuracy, None without validation.
    """

    run_dir: str
    state: str
    epochs_completed: int = -1
    epochs: int = 0
    best_accuracy: float | None = None


def describe_last_run(run: LastRun | None) -> str | None:
    """The sentence that offers the last run to the user, or None when there is nothing to offer."""
    if run is None or not (Path(run.run_dir) / "last.pt").is_file():
        return None
    name = Path(run.run_dir).name
    if run.state == "finished":
        best = "" if run.best_accuracy is None else f", best held-out accuracy {run.best_accuracy:.1%}"
        return f'Your last run ({name}) finished {run.epochs_completed} epochs{best}: "Use this model" adopts it.'
    if run.epochs_completed >= 0:
        done = f"stopped after {run.epochs_completed} of {run.epochs} epochs"
    else:
        done = "stopped before it finished"
    return f"Your last run ({name}) {done}: Resume continues it."


class TrainerMemory:
    """Reads and writes the tab's remembered form and last run."""

    def __init__(self, path: Path | None = None) -> None:
        if path is None:
            from core.paths import config_dir

            path = config_dir() / "trainer.ini"
        self._store = QSettings(str(path), QSettings.Format.IniFormat)

    def _read(self, key: str) -> Any:
        raw = self._store.value(key)
        if not isinstance(raw, str):
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            log.warning("trainer memory: %s is damaged; forgotten", key)
            return None

    def _write(self, key: str, value: Any) -> None:
        self._store.setValue(key, json.dumps(value))
        self._store.sync()

    def form(self) -> dict[str, Any]:
        """The remembered form fields (empty the first time)."""
        value = self._read("form")
        return value if isinstance(value, dict) else {}

    def save_form(self, values: dict[str, Any]) -> None:
        """Remember the form fields."""
        self._write("form", values)

    def last_run(self) -> LastRun | None:
        """The last run, if one was remembered."""
        value = self._read("last_run")
        if not isinstance(value, dict):
            return None
        try:
            return LastRun(**value)
        except TypeError:
            return None

    def save_last_run(self, run: LastRun) -> None:
        """Remember ``run`` as the last one."""
        self._write("last_run", asdict(run))
