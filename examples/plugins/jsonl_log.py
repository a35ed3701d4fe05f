"""Example GhostFace plugin: append every recognition event to a JSON-lines file.

Copy this file into your plugins folder (GhostFace > Plugins > "Open plugins folder", or see
``ghostface plugins list``). Plugins in that folder are on by default: it runs from the next start of
the app or of ``ghostface run --plugins``. Each line is the event as JSON, the same format as
``ghostface run --events``.
"""

from __future__ import annotations

import json
from pathlib import Path

from ghostface_api import Setting

NAME = "jsonl-log"
API_VERSION = 2  # needs visits (visit_id, duration_s): GhostFace with plugin API 2 or later
SETTINGS = {
    "path": Setting("", help="the file to append to; empty: events.jsonl in the plugin's own folder"),
    "with_thumbnail": Setting(False, help="add the face thumbnail as base64 JPEG"),
}

_file = None
_with_thumbnail = False


def on_start(context):
    """Called once, before any event, with the settings checked against SETTINGS."""
    global _file, _with_thumbnail
    path = Path(context.settings["path"] or context.data_dir / "events.jsonl")
    path.parent.mkdir(parents=True, exist_ok=True)
    _file = path.open("a", encoding="utf-8")
    _with_thumbnail = context.settings["with_thumbnail"]
    context.logger.info("writing events to %s", path)


def on_event(event):
    """Called for every event. It may take its time: it never slows the video."""
    _file.write(json.dumps(event.to_dict(with_thumbnail=_with_thumbnail)) + "\n")
    _file.flush()


def on_stop():
    """Called once when the plugins are stopped (also at exit, after the queued events)."""
    if _file is not None:
        _file.close()
