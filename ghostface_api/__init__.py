"""GhostFace's plugin API: import what a plugin needs from here (``from ghostface_api import Setting``).

A stable, documented name that clashes with no other package; see docs/plugins.md.
"""

from core.plugin_api import (
    API_VERSION,
    HOOKS,
    EventKind,
    PluginContext,
    RecognitionEvent,
    Setting,
    make_context,
    make_event,
)

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
