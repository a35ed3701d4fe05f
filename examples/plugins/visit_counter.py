"""Example GhostFace plugin: count each person's visits and log a greeting.

A visit is one person's presence in view: its ``recognized`` and ``left`` events share a ``visit_id``,
and ``left`` carries the visit's ``duration_s``. The counts live in memory for the session; a real
plugin could keep them in a file under ``context.data_dir``. An exception raised here is caught, logged and
shown in the Plugins dialog; it never stops the app or the other plugins.
"""

from __future__ import annotations

import logging

from ghostface_api import Setting

NAME = "visit-counter"
SETTINGS = {
    "greeting": Setting(
        "Welcome back, {person}! Visit number {count}.", help="logged on each visit; {person}, {count}"
    )
}

log = logging.getLogger("ghostface.plugin.visit-counter")
visits: dict[str, int] = {}
_greeting = SETTINGS["greeting"].default


def on_start(context):
    global _greeting
    _greeting = context.settings["greeting"]
    visits.clear()


def on_event(event):
    # event.kind is "recognized", "updated", "unknown" or "left"; event.person is None when unknown.
    if event.person is None:
        return
    if event.kind == "recognized":
        visits[event.person] = visits.get(event.person, 0) + 1
        log.info(_greeting.format(person=event.person, count=visits[event.person]))
    elif event.kind == "left":
        log.info("%s left after %.0f s (visit %s)", event.person, event.duration_s, event.visit_id)
