"""Plugin discovery: built-ins, the user's plugins folder and the ``ghostface.plugins`` entry points.

A plugin is a module (or any object) with any of ``on_start(context)``, ``on_event(event)`` and
``on_stop()``, and optionally ``NAME`` (defaults to the file or entry-point name) and ``SETTINGS`` (a dict
of defaults the user can edit). A class is instantiated once, with no arguments.

Discovery never stops at a broken plugin: every candidate gives a :class:`DiscoveredPlugin` with either
the plugin or the error (a syntax error, an import error, an exception at import, no hooks), so that the
Plugins dialog can list it and the app runs on.

Enabled by default: plugins from the user's folder and from installed packages (putting a file there or
installing a package is the user asking for it), and of the built-ins only the attendance log, which
writes a local CSV and nothing else. The snapshot saver (writes images), the webhook (sends data over the
network) and the desktop notification (pops up on screen) wait until the user enables them.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
import sys
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

from core import paths
from core.settings import PluginSettings

__all__ = [
    "BUILTIN_PLUGINS",
    "DEFAULT_ENABLED_BUILTINS",
    "ENTRY_POINT_GROUP",
    "HOOKS",
    "DiscoveredPlugin",
    "LoadedPlugin",
    "Origin",
    "discover_plugins",
    "last_discovery",
    "load_plugins",
    "plugin_defaults",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "ghostface.plugins"
HOOKS = ("on_start", "on_event", "on_stop")

# "module:attribute" of each built-in plugin; the attribute is a class, instantiated on discovery.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "core.builtin_plugins.attendance:AttendanceLog",
    "core.builtin_plugins.snapshot:SnapshotSaver",
    "core.builtin_plugins.webhook:Webhook",
)
DEFAULT_ENABLED_BUILTINS: frozenset[str] = frozenset({"attendance"})

# Folder plugins are imported under this package name, so that a plugin called "json" cannot shadow
# the standard library and two discoveries do not mix their modules.
_FOLDER_PACKAGE = "ghostface_user_plugins"

_last_discovery: tuple[DiscoveredPlugin, ...] = ()


class Origin:
    """Where a plugin came from (plain strings: they are shown to the user and saved nowhere)."""

    BUILTIN = "built-in"
    FOLDER = "plugins folder"
    ENTRY_POINT = "entry point"
    INTERNAL = "internal"


@dataclass(frozen=True, slots=True)
class DiscoveredPlugin:
    """One discovery result: the plugin, or why it could not be loaded.

    Attributes:
        name: the plugin's ``NAME``, else its file, package or entry-point name.
        origin: one of the :class:`Origin` values.
        plugin: the module or object with the hooks, or None when it is broken.
        error: one line saying what is wrong, or None.
        location: the file, or ``distribution: module:attr`` for an entry point.
        details: the traceback of the error, for the log and the dialog's tooltip.
    """

    name: str
    origin: str
    plugin: object | None
    error: str | None
    location: str = ""
    details: str = field(default="", repr=False)

    @property
    def ok(self) -> bool:
        return self.plugin is not None and self.error is None


@dataclass(frozen=True, slots=True)
class LoadedPlugin:
    """A working plugin with its effective settings, ready for the :class:`core.events.EventBus`.

    Attributes:
        name: unique among the loaded plugins.
        origin: one of the :class:`Origin` values.
        plugin: the module or object with the hooks.
        settings: its ``SETTINGS`` defaults overridden by ``PluginSettings.options[name]`` (read-only).
        enabled: whether it receives events.
        location: where it was found.
    """

    name: str
    origin: str
    plugin: object
    settings: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    enabled: bool = True
    location: str = ""


def plugin_defaults(plugin: object) -> dict[str, Any]:
    """A copy of the plugin's ``SETTINGS`` (empty when it has none)."""
    value = getattr(plugin, "SETTINGS", None)
    return dict(value) if isinstance(value, Mapping) else {}


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        where = f"{Path(exc.filename).name}, line {exc.lineno}" if exc.filename else f"line {exc.lineno}"
        return f"SyntaxError: {exc.msg} ({where})"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _check(obj: object, fallback_name: str) -> tuple[str, str | None]:
    """The plugin's name and what is wrong with its shape (None when it is usable)."""
    name = getattr(obj, "NAME", None)
    if name is None:
        name = fallback_name
    if not isinstance(name, str) or not name.strip():
        return fallback_name, f"NAME must be a non-empty string, not {name!r}"
    name = name.strip()
    if not any(callable(getattr(obj, hook, None)) for hook in HOOKS):
        return name, "defines none of on_start, on_event, on_stop"
    settings = getattr(obj, "SETTINGS", None)
    if settings is not None and not isinstance(settings, Mapping):
        return name, f"SETTINGS must be a dict, not {type(settings).__name__}"
    return name, None


def _instantiate(obj: object) -> object:
    # A class is a plugin factory: one instance per discovery keeps state out of the class.
    return obj() if isinstance(obj, type) else obj


def _result(obj: object, fallback: str, origin: str, location: str) -> DiscoveredPlugin:
    name, problem = _check(obj, fallback)
    if problem:
        return DiscoveredPlugin(name, origin, None, problem, location)
    return DiscoveredPlugin(name, origin, obj, None, location)


def _failure(name: str, origin: str, location: str, exc: BaseException) -> DiscoveredPlugin:
    details = "".join(traceback.format_exception(exc))
    log.warning("plugin %r (%s, %s) could not be loaded: %s", name, origin, location, _one_line(exc))
    log.debug("%s", details)
    return DiscoveredPlugin(name, origin, None, _one_line(exc), location, details)


def _discover_builtins(specs: Sequence[str], extra: Sequence[object]) -> list[DiscoveredPlugin]:
    out: list[DiscoveredPlugin] = []
    for spec in specs:
        module_name, _, attr = spec.partition(":")
        fallback = module_name.rsplit(".", 1)[-1]
        try:
            obj = _instantiate(getattr(importlib.import_module(module_name), attr))
        except Exception as exc:  # a built-in should never break, but the app must still start
            out.append(_failure(fallback, Origin.BUILTIN, spec, exc))
            continue
        out.append(_result(obj, fallback, Origin.BUILTIN, spec))
    for obj in extra:
        try:
            obj = _instantiate(obj)
        except Exception as exc:
            out.append(_failure(getattr(obj, "__name__", repr(obj)), Origin.BUILTIN, repr(obj), exc))
            continue
        fallback = getattr(obj, "__name__", type(obj).__name__).rsplit(".", 1)[-1]
        location = getattr(obj, "__module__", None) or getattr(obj, "__name__", "")
        out.append(_result(obj, fallback, Origin.BUILTIN, str(location)))
    return out


def _folder_candidates(folder: Path) -> list[tuple[str, Path]]:
    """(name, file to import) for every ``*.py`` file and package in the folder, sorted by name."""
    found: list[tuple[str, Path]] = []
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        log.warning("plugins folder %s cannot be read: %s", folder, exc)
        return found
    for entry in entries:
        if entry.name.startswith((".", "_")):
            continue
        if entry.is_file() and entry.suffix == ".py":
            found.append((entry.stem, entry))
        elif entry.is_dir() and (entry / "__init__.py").is_file():
            found.append((entry.name, entry / "__init__.py"))
    return found


def _ensure_folder_package() -> None:
    if _FOLDER_PACKAGE not in sys.modules:
        package = ModuleType(_FOLDER_PACKAGE)
        package.__path__ = []
        sys.modules[_FOLDER_PACKAGE] = package


def _import_file(stem: str, file: Path) -> ModuleType:
    _ensure_folder_package()
    module_name = f"{_FOLDER_PACKAGE}.{stem}"
    is_package = file.name == "__init__.py"
    spec = importlib.util.spec_from_file_location(
        module_name, file, submodule_search_locations=[str(file.parent)] if is_package else None
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {file}")
    module = importlib.util.module_from_spec(spec)
    # Registered before running, as a normal import does, so that a package's relative imports work.
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def _discover_folder(folder: Path) -> list[DiscoveredPlugin]:
    out: list[DiscoveredPlugin] = []
    for stem, file in _folder_candidates(folder):
        location = str(file.parent if file.name == "__init__.py" else file)
        try:
            module = _import_file(stem, file)
        except (Exception, SystemExit) as exc:  # SystemExit: a plugin calling sys.exit() at import
            out.append(_failure(stem, Origin.FOLDER, location, exc))
            continue
        out.append(_result(module, stem, Origin.FOLDER, location))
    return out


def _discover_entry_points() -> list[DiscoveredPlugin]:
    out: list[DiscoveredPlugin] = []
    try:
        eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception as exc:  # a broken installed distribution must not stop the app
        log.warning("entry points of group %s cannot be read: %s", ENTRY_POINT_GROUP, exc)
        return out
    seen: set[tuple[str, str]] = set()
    for ep in sorted(eps, key=lambda e: e.name):
        # The same distribution can be visible twice (a path listed twice): load it once.
        if (ep.name, ep.value) in seen:
            continue
        seen.add((ep.name, ep.value))
        dist = getattr(ep, "dist", None)
        location = f"{dist.name}: {ep.value}" if dist is not None else ep.value
        try:
            obj = _instantiate(ep.load())
        except (Exception, SystemExit) as exc:
            out.append(_failure(ep.name, Origin.ENTRY_POINT, location, exc))
            continue
        out.append(_result(obj, ep.name, Origin.ENTRY_POINT, location))
    return out


def discover_plugins(
    folder: Path | None = None,
    *,
    builtins: bool = True,
    entry_points: bool = True,
    extra_builtins: Sequence[object] = (),
) -> list[DiscoveredPlugin]:
    """Find every plugin, broken ones included, in the order built-ins, folder, entry points.

    Args:
        folder: the plugins folder; default :func:`core.paths.plugins_dir`.
        builtins: include the built-in plugins of :data:`BUILTIN_PLUGINS`.
        entry_points: include the ``ghostface.plugins`` entry points of installed distributions
            (there are none in a frozen build).
        extra_builtins: more built-in plugins (modules, objects or classes) that live outside ``core``,
            such as the app's desktop notification, which needs Qt.

    Returns:
        One :class:`DiscoveredPlugin` per candidate. A name already taken by an earlier plugin gives
        an error result for the later one, so names stay unique.
    """
    found: list[DiscoveredPlugin] = []
    found.extend(_discover_builtins(BUILTIN_PLUGINS if builtins else (), extra_builtins))
    found.extend(_discover_folder(Path(folder) if folder is not None else paths.plugins_dir()))
    if entry_points:
        found.extend(_discover_entry_points())
    unique: list[DiscoveredPlugin] = []
    taken: dict[str, DiscoveredPlugin] = {}
    for item in found:
        first = taken.get(item.name)
        if first is not None and item.ok:
            message = f"the name {item.name!r} is already used by {first.location or first.origin}"
            log.warning("plugin at %s ignored: %s", item.location, message)
            unique.append(DiscoveredPlugin(item.name, item.origin, None, message, item.location))
            continue
        if item.ok:
            taken[item.name] = item
        unique.append(item)
    global _last_discovery
    _last_discovery = tuple(unique)
    return unique


def last_discovery() -> tuple[DiscoveredPlugin, ...]:
    """What the latest :func:`discover_plugins` call found (broken plugins included), without
    importing anything again; empty before the first call."""
    return _last_discovery


def load_plugins(discovered: Iterable[DiscoveredPlugin], settings: PluginSettings) -> list[LoadedPlugin]:
    """The working plugins with their effective settings and enabled state.

    Settings are the plugin's ``SETTINGS`` overridden by ``settings.options[name]``; keys the plugin
    does not declare are kept (a plugin may read optional keys). Enabled state is
    ``settings.enabled[name]`` when set, else the default described in the module docstring.
    """
    loaded: list[LoadedPlugin] = []
    for item in discovered:
        if not item.ok or item.plugin is None:
            continue
        merged = plugin_defaults(item.plugin)
        merged.update(settings.options.get(item.name, {}))
        default_on = item.origin != Origin.BUILTIN or item.name in DEFAULT_ENABLED_BUILTINS
        enabled = bool(settings.enabled.get(item.name, default_on))
        loaded.append(
            LoadedPlugin(
                item.name, item.origin, item.plugin, MappingProxyType(merged), enabled, item.location
            )
        )
    return loaded
