"""Example GhostFace plugin: count each person's visits and log a greeting.

A visit starts with a ``recognized`` event. The counts live in memory for the session; a real plugin
could keep them in a file under ``context.data_dir``. An exception raised here is caught, logged and
shown in the Plugins dialog; it never stops the app or the other plugins.
"""

from __future__ import annotations

import logging

NAME = "visit-counter"
SETTINGS = {"greeting": "Welcome back, {person}! Visit number {count}."}

log = logging.getLogger("ghostface.plugin.visit-counter")
visits: dict[str, int] = {}
_greeting = SETTINGS["greeting"]


def on_start(context):
    global _greeting
    _greeting = context.settings["greeting"]
    visits.clear()


def on_event(event):
    # event.kind is "recognized", "unknown" or "left"; event.person is None for an unknown face.
    if event.kind != "recognized" or event.person is None:
        return
    visits[event.person] = visits.get(event.person, 0) + 1
    log.info(_greeting.format(person=event.person, count=visits[event.person]))
