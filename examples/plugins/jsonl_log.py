"""Example GhostFace plugin: append every recognition event to a JSON-lines file.

Copy this file into your plugins folder (GhostFace > Plugins > "Open plugins folder"), restart the app
and switch it on in the Plugins dialog. Each line is the event as JSON, the same format as
``ghostface run --events``.
"""

from __future__ import annotations

import json
from pathlib import Path

NAME = "jsonl-log"
# Defaults the user can change in the Plugins dialog. An empty path means "events.jsonl" in the
# folder GhostFace gives this plugin (context.data_dir).
SETTINGS = {"path": "", "with_thumbnail": False}

_file = None
_with_thumbnail = False


def on_start(context):
    """Called once, on this plugin's own thread, before any event."""
    global _file, _with_thumbnail
    path = Path(context.settings["path"] or context.data_dir / "events.jsonl")
    path.parent.mkdir(parents=True, exist_ok=True)
    _file = path.open("a", encoding="utf-8")
    _with_thumbnail = bool(context.settings["with_thumbnail"])
    context.logger.info("writing events to %s", path)


def on_event(event):
    """Called for every event. It may take its time: it never slows the video."""
    _file.write(json.dumps(event.to_dict(with_thumbnail=_with_thumbnail)) + "\n")
    _file.flush()


def on_stop():
    """Called once when the app stops the plugins."""
    if _file is not None:
        _file.close()
