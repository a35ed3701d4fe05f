"""The plugin API: everything a plugin author needs, in one module that stays stable.

Authors import it as :mod:`ghostface_api` (a name no other package uses); this module is its
implementation inside the engine. What is listed in ``__all__`` changes only with
:data:`API_VERSION`: a plugin that sets ``API_VERSION = N`` is refused, with a clear message, by an
app that provides less than ``N``.

The two factories make the objects a plugin receives, for the author's own unit tests::

    from ghostface_api import make_context, make_event
    import my_plugin

    my_plugin.on_start(make_context(my_plugin, settings={"url": "http://localhost:8000"}))
    my_plugin.on_event(make_event("recognized", person="Ada"))
    my_plugin.on_stop()
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from core.plugins import HOOKS, PluginContext, Setting, resolve_settings, settings_schema
from core.types import EVENT_API_VERSION, EventKind, RecognitionEvent, parse_kind

__all__ = [
    "API_VERSION",
    "HOOKS",
    "EventKind",
    "PluginContext",
    "RecognitionEvent",
    "Setting",
    "make_context",
    "make_event",
]

API_VERSION = EVENT_API_VERSION


def make_event(
    kind: EventKind | str = EventKind.RECOGNIZED,
    person: str | None = "Test Person",
    **fields: Any,
) -> RecognitionEvent:
    """A realistic event as GhostFace sends it (a drawn face as thumbnail and frame), for tests.

    Args:
        kind: ``recognized``, ``updated``, ``unknown`` or ``left`` (anything else raises ValueError).
        person: the name; None for an unknown face (the default for ``kind="unknown"``).
        **fields: any other :class:`RecognitionEvent` field to set (``visit_id``, ``source_label``, ...).
    """
    from core.events import make_test_event

    kind = parse_kind(kind)
    base = make_test_event()
    if kind is EventKind.UNKNOWN and person == "Test Person":
        person = None
    now = time.time()
    values: dict[str, Any] = {
        "kind": kind,
        "person": person,
        "time": now,
        "visit_id": "0123456789abcdef",
        "first_seen": now,
        "stream_time": 0.0,
        "source": "test",
        "source_label": "Test camera",
        "frame_jpeg": b"" if kind is EventKind.LEFT else base.frame_jpeg,
    }
    values.update(fields)
    return dataclasses.replace(base, **values)


def make_context(
    plugin: object | None = None,
    settings: Mapping[str, Any] | None = None,
    *,
    name: str | None = None,
    data_dir: Path | None = None,
) -> PluginContext:
    """The context GhostFace hands ``on_start``, for tests.

    Args:
        plugin: the plugin (module or object); its ``SETTINGS`` give the defaults and check ``settings``
            exactly as the app does (a wrong type raises ValueError here instead of a warning).
        settings: the user's values.
        name: the plugin's name; default its ``NAME``, else "test-plugin".
        data_dir: its own folder; default a new temporary folder.
    """
    name = name or str(getattr(plugin, "NAME", "") or "test-plugin")
    schema = settings_schema(plugin) if plugin is not None else {}
    if plugin is not None:
        values, problems = resolve_settings(name, schema, settings or {})
        if problems:
            raise ValueError(f"settings of {name!r}: " + "; ".join(problems))
    else:
        values = dict(settings or {})
    own = Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix=f"ghostface-{name}-"))
    own.mkdir(parents=True, exist_ok=True)
    return PluginContext(
        name=name,
        settings=MappingProxyType(values),
        data_dir=own,
        logger=logging.getLogger(f"ghostface.plugin.{name}"),
        session_started=time.time(),
        app_data_dir=own.parent,
    )
