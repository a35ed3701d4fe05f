"""How a setting is named and measured for the user: a label in words, and its unit as a suffix.

The settings model's titles are the labels; a unit the title carries in brackets ("Keep history
(days)") moves to the number's suffix instead, and a setting without a title gets its name in words
(``timeout_s`` reads "Timeout", in seconds). Units come from the field's name, so a new field that
follows the naming (``*_px``, ``*_s``, ``*_frames``, ``*_days``, ``*_mb``) gets its unit for free.
"""

from __future__ import annotations

import re

__all__ = ["UI_RANGES", "field_label", "human_name", "unit_of"]

# A name's ending and the unit it means; the first that matches wins.
_UNIT_ENDINGS: tuple[tuple[str, str], ...] = (
    ("_px", "px"),
    ("_fps", "fps"),
    ("_frames", "frames"),
    ("_s", "s"),
    ("_ms", "ms"),
    ("_days", "days"),
    ("_mb", "MB"),
)
# Settings whose name does not say their unit.
_UNITS: dict[str, str] = {
    "camera.width": "px",
    "camera.height": "px",
    "camera.max_fps": "fps",
    "tracking.reembed_interval": "frames",
    "tracking.vote_window": "frames",
    "tracking.confirm_votes": "votes",
}
# Labels that read better than the model's title once the unit is the suffix.
_LABELS: dict[str, str] = {
    "tracking.reembed_interval": "Re-embed a face every",
    "camera.max_fps": "Maximum frame rate",
}
# Ranges narrower than the model's where the wider one means nothing to a user: a cosine similarity
# below 0 is no resemblance at all, so the threshold is set on a 0-1 scale.
UI_RANGES: dict[str, tuple[float, float]] = {
    "recognition.similarity_threshold": (0.0, 1.0),
}
_UNIT_IN_TITLE = re.compile(r"\s*\((?:px|pixels|days|MB|s|seconds|frames)\)\s*$")


def unit_of(name: str) -> str:
    """The unit of setting ``name`` (``"section.key"`` or a plugin's key): ``px``, ``s``... or ``""``."""
    if name in _UNITS:
        return _UNITS[name]
    key = name.rpartition(".")[2]
    for ending, unit in _UNIT_ENDINGS:
        if key.endswith(ending):
            return unit
    return ""


def human_name(key: str) -> str:
    """A setting's name in words, without its unit: ``timeout_s`` -> "Timeout", ``keep_count`` -> "Keep count"."""
    for ending, _ in _UNIT_ENDINGS:
        if key.endswith(ending) and len(key) > len(ending):
            key = key[: -len(ending)]
            break
    words = key.replace("-", "_").strip("_").replace("_", " ")
    return words[:1].upper() + words[1:] if words else key


def field_label(name: str, title: str | None) -> str:
    """The label of setting ``name``: its title without a bracketed unit, else its name in words."""
    if name in _LABELS:
        return _LABELS[name]
    if title:
        return _UNIT_IN_TITLE.sub("", title)
    return human_name(name.rpartition(".")[2])
