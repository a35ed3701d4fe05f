"""Plugin discovery: built-ins, the user's plugins folder and the ``ghostface.plugins`` entry points.

A plugin is a module (or any object) with any of ``on_start(context)``, ``on_event(event)`` and
``on_stop()`` (plain or ``async def``), and optionally ``NAME`` (defaults to the file or entry-point
name), ``SETTINGS`` (a dict of :class:`Setting`, or of plain defaults) and ``API_VERSION`` (the plugin
API version it needs). A class is instantiated once, with no arguments. The public, stable names are
re-exported by :mod:`ghostface_api`; authors import from there.

Discovery never stops at a broken plugin: every candidate gives a :class:`DiscoveredPlugin` with either
the plugin or the error (a syntax error, an import error, an exception at import, no hooks, a misspelled
hook, a bad settings schema, a newer API version, a file another user could have written), so that the
Plugins dialog and ``ghostface plugins list`` can show it and the app runs on.

Folder and entry-point plugins can be *isolated* (``isolate=True``, what the app and the CLI do): each is
imported and run in a process of its own (:mod:`core._plugin_host`), so that a crash, even
``os._exit``, at import or in a hook ends only that process.

Enabled by default: plugins from the user's folder and from installed packages (putting a file there or
installing a package is the user asking for it), and of the built-ins only the attendance log, which
writes a local CSV and nothing else. The snapshot saver (writes images), the webhook (sends data over the
network) and the desktop notification (pops up on screen) wait until the user enables them.
"""

from __future__ import annotations

import builtins
import importlib
import importlib.metadata
import importlib.util
import inspect
import logging
import os
import stat
import sys
import time
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

from core import paths
from core.settings import PluginSettings
from core.types import EVENT_API_VERSION

__all__ = [
    "BUILTIN_PLUGINS",
    "DEFAULT_ENABLED_BUILTINS",
    "ENTRY_POINT_GROUP",
    "HOOKS",
    "DiscoveredPlugin",
    "LoadedPlugin",
    "Origin",
    "PluginContext",
    "Setting",
    "check_ownership",
    "coerce_setting",
    "discover_plugins",
    "last_discovery",
    "load_plugins",
    "plugin_defaults",
    "remember_discovery",
    "resolve_settings",
    "settings_schema",
    "warn_unknown_names",
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


_SETTING_TYPES: tuple[type, ...] = (bool, int, float, str, list)


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting of a plugin, as the user sees and edits it.

    Attributes:
        default: the value when the user set none; it must be valid itself.
        type: ``bool``, ``int``, ``float``, ``str`` or ``list``; default: the type of ``default``.
        choices: the allowed values (a drop-down in the Plugins dialog); empty: any value of the type.
        secret: a password or token: hidden in the dialog and never shown in ``plugins list``.
        help: one sentence for the user (the dialog's tooltip).
        min: the smallest allowed number (int and float only).
        max: the largest allowed number (int and float only).
        label: the name the user sees; empty: the key in words (``timeout_s`` reads "Timeout").
        path: ``"file"`` or ``"folder"`` when the text is a path: the dialog offers "Browse…".
    """

    default: Any
    type: builtins.type | None = None
    choices: tuple[Any, ...] = ()
    secret: bool = False
    help: str = ""
    min: float | None = None
    max: float | None = None
    label: str = ""
    path: str = ""

    @property
    def kind(self) -> builtins.type:
        """The value type: ``type``, else that of ``default``."""
        return self.type if self.type is not None else type(self.default)


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "on", "off"):
        return value.strip().lower() in ("true", "yes", "on")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError(f"expected true or false, got {value!r}")


def _as_number(setting: Setting, kind: builtins.type, value: Any) -> int | float:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    try:
        number = float(value) if not isinstance(value, int | float) else value
    except (TypeError, ValueError):
        raise ValueError(
            f"expected {'a whole number' if kind is int else 'a number'}, got {value!r}"
        ) from None
    out: int | float
    if kind is int:
        if float(number) != int(float(number)):
            raise ValueError(f"expected a whole number, got {value!r}")
        out = int(float(number))
    else:
        out = float(number)
    if setting.min is not None and out < setting.min:
        raise ValueError(f"must be at least {setting.min:g}, got {out!r}")
    if setting.max is not None and out > setting.max:
        raise ValueError(f"must be at most {setting.max:g}, got {out!r}")
    return out


def coerce_setting(setting: Setting, value: Any) -> Any:
    """``value`` converted to the setting's type and checked against its choices and bounds.

    Text from a settings file or a form is accepted where it reads unambiguously as the type ("5" for an
    int, "true"/"false" for a bool); anything else is refused rather than guessed.

    Raises:
        ValueError: with a message that names the expected type, choices or bounds.
    """
    kind = setting.kind
    out: Any
    if kind is bool:
        out = _as_bool(value)
    elif kind in (int, float):
        out = _as_number(setting, kind, value)
    elif kind is str:
        if not isinstance(value, str):
            raise ValueError(f"expected text, got {value!r}")
        out = value
    elif kind is list:
        if not isinstance(value, list | tuple):
            raise ValueError(f"expected a list, got {value!r}")
        out = list(value)
    else:
        raise ValueError(f"unsupported setting type {kind.__name__}")
    if setting.choices and out not in setting.choices:
        raise ValueError(f"must be one of {', '.join(repr(c) for c in setting.choices)}, got {out!r}")
    return out


def settings_schema(plugin: object) -> dict[str, Setting]:
    """The plugin's ``SETTINGS`` as :class:`Setting` objects (plain values become their defaults).

    Raises:
        ValueError: ``SETTINGS`` is not a dict, a key is not text, a type is not supported, or a default
            does not pass its own checks.
    """
    value = getattr(plugin, "SETTINGS", None)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"SETTINGS must be a dict, not {type(value).__name__}")
    schema: dict[str, Setting] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"SETTINGS keys must be non-empty text, not {key!r}")
        setting = item if isinstance(item, Setting) else Setting(default=item)
        if setting.kind not in _SETTING_TYPES:
            names = ", ".join(t.__name__ for t in _SETTING_TYPES)
            raise ValueError(f"setting {key!r}: type {setting.kind.__name__} is not one of {names}")
        try:
            coerce_setting(setting, setting.default)
        except ValueError as exc:
            raise ValueError(f"setting {key!r}: its default {exc}") from None
        schema[key] = setting
    return schema


def resolve_settings(
    name: str, schema: Mapping[str, Setting], options: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The effective settings of a plugin: defaults overridden by the user's options, each checked.

    A value that fails its checks is replaced by the default, and a key the plugin does not declare is
    dropped; both are logged as warnings and returned as problems (shown by ``plugins list``).

    Returns:
        The values and the problems, one line each.
    """
    values = {key: setting.default for key, setting in schema.items()}
    problems: list[str] = []
    for key, raw in options.items():
        setting = schema.get(key)
        if setting is None:
            known = ", ".join(schema) or "none"
            problems.append(f"unknown setting {key!r} ignored (known: {known})")
            continue
        try:
            values[key] = coerce_setting(setting, raw)
        except ValueError as exc:
            shown = "***" if setting.secret else repr(raw)
            problems.append(
                f"setting {key!r} = {shown}: {exc if not setting.secret else 'invalid'}; default used"
            )
    for problem in problems:
        log.warning("plugin %r: %s", name, problem)
    return values, problems


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
        refused: not loaded on purpose (a file another user could have written): ``error`` says why.
        isolated: it runs in a process of its own.
    """

    name: str
    origin: str
    plugin: object | None
    error: str | None
    location: str = ""
    details: str = field(default="", repr=False)
    refused: bool = False
    isolated: bool = False

    @property
    def ok(self) -> bool:
        """Whether the plugin loaded without an error."""
        return self.plugin is not None and self.error is None

    @property
    def state(self) -> str:
        """``ok``, ``refused`` or ``broken``, as ``plugins list`` shows it."""
        return "ok" if self.ok else "refused" if self.refused else "broken"


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
        problems: what was wrong with the user's settings for it (each was replaced by its default).
    """

    name: str
    origin: str
    plugin: object
    settings: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    enabled: bool = True
    location: str = ""
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PluginContext:
    """What a plugin's ``on_start(context)`` receives.

    Attributes:
        name: the plugin's name.
        settings: its effective settings (its ``SETTINGS`` defaults overridden by the user's, each
            coerced to its declared type), read-only.
        data_dir: a folder of its own for files it keeps (it exists).
        logger: a logger named ``ghostface.plugin.<name>``; what it logs shows in the app's log.
        session_started: wall-clock seconds when the bus started.
        app_data_dir: the app's data folder.
        extras: what the app added (see :class:`core.events.BusContext`); an isolated plugin gets only
            the values that can be pickled.
        api_version: :data:`core.types.EVENT_API_VERSION` of the running app.
    """

    name: str
    settings: Mapping[str, Any]
    data_dir: Path
    logger: logging.Logger
    session_started: float
    app_data_dir: Path
    extras: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    api_version: int = EVENT_API_VERSION


def plugin_defaults(plugin: object) -> dict[str, Any]:
    """The defaults of the plugin's ``SETTINGS`` (empty when it has none or they are invalid)."""
    try:
        return {key: setting.default for key, setting in settings_schema(plugin).items()}
    except ValueError:
        return {}


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        where = f"{Path(exc.filename).name}, line {exc.lineno}" if exc.filename else f"line {exc.lineno}"
        return f"SyntaxError: {exc.msg} ({where})"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _unknown_hooks(obj: object) -> list[str]:
    """Names that look like hooks (``on_...``, callable) but are not one: most likely a misspelling."""
    return sorted(
        attr
        for attr in dir(obj)
        if attr.startswith("on_") and attr not in HOOKS and callable(getattr(obj, attr, None))
    )


def _check(obj: object, fallback_name: str) -> tuple[str, str | None]:
    """The plugin's name and what is wrong with its shape (None when it is usable)."""
    name = getattr(obj, "NAME", None)
    if name is None:
        name = fallback_name
    if not isinstance(name, str) or not name.strip():
        return fallback_name, f"NAME must be a non-empty string, not {name!r}"
    name = name.strip()
    wanted = getattr(obj, "API_VERSION", None)
    if wanted is not None:
        if not isinstance(wanted, int) or isinstance(wanted, bool) or wanted < 1:
            return name, f"API_VERSION must be a whole number of at least 1, not {wanted!r}"
        if wanted > EVENT_API_VERSION:
            return name, (
                f"needs plugin API version {wanted}, but this GhostFace provides version "
                f"{EVENT_API_VERSION}: update GhostFace"
            )
    unknown = _unknown_hooks(obj)
    if unknown:
        return name, (
            f"unknown hook{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
            f"(the hooks are {', '.join(HOOKS)})"
        )
    if not any(callable(getattr(obj, hook, None)) for hook in HOOKS):
        return name, f"defines none of the hooks {', '.join(HOOKS)}"
    try:
        settings_schema(obj)
    except ValueError as exc:
        return name, str(exc)
    return name, None


def async_hooks(obj: object) -> tuple[str, ...]:
    """The plugin's hooks written as ``async def`` (run to completion on the plugin's own loop)."""
    return tuple(h for h in HOOKS if inspect.iscoroutinefunction(getattr(obj, h, None)))


def check_ownership(path: Path) -> str | None:
    """Why ``path`` must not be trusted as plugin code, or None.

    As ssh does with its key files: refused when the file or folder is owned by another user (root
    excepted for nothing: a plugin runs as you) or writable by group or others, since anyone who can
    write it can run code as you. Not checked where POSIX permissions do not exist (Windows).
    """
    if os.name != "posix":
        return None
    try:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            # The link itself and what it points at must both be yours.
            target = path.resolve()
            problem = check_ownership(target)
            if problem:
                return problem
    except OSError as exc:
        return f"cannot check {path}: {exc.strerror or exc}"
    uid = os.getuid()
    if st.st_uid != uid:
        return f"{path} is owned by user id {st.st_uid}, not by you (id {uid})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        who = " and ".join(
            w for w, bit in (("group", stat.S_IWGRP), ("others", stat.S_IWOTH)) if st.st_mode & bit
        )
        return f"{path} is writable by {who} (fix: chmod go-w {path})"
    return None


def _package_problem(folder: Path) -> str | None:
    for path in [folder, *sorted(folder.rglob("*.py"))]:
        problem = check_ownership(path)
        if problem:
            return problem
    return None


def _instantiate(obj: object) -> object:
    # A class is a plugin factory: one instance per discovery keeps state out of the class.
    return obj() if isinstance(obj, type) else obj


def _result(obj: object, fallback: str, origin: str, location: str) -> DiscoveredPlugin:
    name, problem = _check(obj, fallback)
    if problem:
        log.warning("plugin %r (%s, %s) not loaded: %s", name, origin, location, problem)
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
        except Exception as exc:  # noqa: BLE001 - a built-in should never break, but the app must still start
            out.append(_failure(fallback, Origin.BUILTIN, spec, exc))
            continue
        out.append(_result(obj, fallback, Origin.BUILTIN, spec))
    for obj in extra:
        try:
            obj = _instantiate(obj)
        except Exception as exc:  # noqa: BLE001 - the app's own extra built-ins: reported, the app starts
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


def _refused(name: str, origin: str, location: str, reason: str) -> DiscoveredPlugin:
    log.warning("plugin %r (%s) refused: %s", name, location, reason)
    return DiscoveredPlugin(name, origin, None, reason, location, refused=True)


def _folder_specs(folder: Path) -> tuple[list[DiscoveredPlugin], list[tuple[str, Path, str]]]:
    """Refusals for untrusted files, and (name, file to import, location) for the rest."""
    refused: list[DiscoveredPlugin] = []
    todo: list[tuple[str, Path, str]] = []
    candidates = _folder_candidates(folder)
    folder_problem = check_ownership(folder) if candidates else None
    for stem, file in candidates:
        is_package = file.name == "__init__.py"
        location = str(file.parent if is_package else file)
        problem = folder_problem or (_package_problem(file.parent) if is_package else check_ownership(file))
        if problem:
            refused.append(_refused(stem, Origin.FOLDER, location, problem))
        else:
            todo.append((stem, file, location))
    return refused, todo


def _discover_folder(folder: Path) -> list[DiscoveredPlugin]:
    out, todo = _folder_specs(folder)
    for stem, file, location in todo:
        try:
            module = _import_file(stem, file)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - any import failure, even sys.exit(), is reported
            out.append(_failure(stem, Origin.FOLDER, location, exc))
            continue
        out.append(_result(module, stem, Origin.FOLDER, location))
    return out


def _entry_point_list() -> list[tuple[importlib.metadata.EntryPoint, str]]:
    try:
        eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception as exc:  # noqa: BLE001 - a broken installed distribution must not stop the app
        log.warning("entry points of group %s cannot be read: %s", ENTRY_POINT_GROUP, exc)
        return []
    seen: set[tuple[str, str]] = set()
    out: list[tuple[importlib.metadata.EntryPoint, str]] = []
    for ep in sorted(eps, key=lambda e: e.name):
        # The same distribution can be visible twice (a path listed twice): load it once.
        if (ep.name, ep.value) in seen:
            continue
        seen.add((ep.name, ep.value))
        dist = getattr(ep, "dist", None)
        out.append((ep, f"{dist.name}: {ep.value}" if dist is not None else ep.value))
    return out


def _discover_entry_points() -> list[DiscoveredPlugin]:
    out: list[DiscoveredPlugin] = []
    for ep, location in _entry_point_list():
        try:
            obj = _instantiate(ep.load())
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - an installed plugin's failure is reported
            out.append(_failure(ep.name, Origin.ENTRY_POINT, location, exc))
            continue
        out.append(_result(obj, ep.name, Origin.ENTRY_POINT, location))
    return out


def _discover_isolated(folder: Path, entry_points: bool, timeout_s: float) -> list[DiscoveredPlugin]:
    """Folder and entry-point plugins, each imported in a process of its own, all at once.

    Every child imports in parallel; the wait for all of them is bounded by ``timeout_s`` together, so
    a plugin that sleeps in its import delays nothing beyond that and is skipped.
    """
    from core._plugin_host import IsolatedPlugin, PluginLoadError, PluginProcess, PluginSpec

    out, todo = _folder_specs(folder)
    specs: list[tuple[str, PluginSpec]] = [
        (Origin.FOLDER, PluginSpec("file", stem, str(file), location)) for stem, file, location in todo
    ]
    if entry_points:
        specs += [
            (Origin.ENTRY_POINT, PluginSpec("entry_point", ep.name, ep.value, location))
            for ep, location in _entry_point_list()
        ]
    started: list[tuple[str, PluginSpec, PluginProcess | Exception]] = []
    for origin, spec in specs:
        try:
            started.append((origin, spec, PluginProcess(spec)))
        except OSError as exc:  # no process could be started (resources): say so for this plugin
            started.append((origin, spec, exc))
    deadline = time.monotonic() + timeout_s
    for origin, spec, process in started:
        if isinstance(process, Exception):
            out.append(_failure(spec.name, origin, spec.location, process))
            continue
        try:
            info = process.wait_loaded(deadline - time.monotonic(), timeout_s)
        except PluginLoadError as exc:
            log.warning("plugin %r (%s, %s) could not be loaded: %s", spec.name, origin, spec.location, exc)
            out.append(
                DiscoveredPlugin(spec.name, origin, None, str(exc), spec.location, exc.details, isolated=True)
            )
            continue
        plugin = IsolatedPlugin(spec, process, info, timeout_s)
        out.append(DiscoveredPlugin(info.name, origin, plugin, None, spec.location, isolated=True))
    return out


def discover_plugins(
    folder: Path | None = None,
    *,
    builtins: bool = True,
    entry_points: bool = True,
    extra_builtins: Sequence[object] = (),
    external: bool = True,
    isolate: bool = False,
    timeout_s: float = 10.0,
) -> list[DiscoveredPlugin]:
    """Find every plugin, broken and refused ones included, in the order built-ins, folder, entry points.

    Args:
        folder: the plugins folder; default :func:`core.paths.plugins_dir`.
        builtins: include the built-in plugins of :data:`BUILTIN_PLUGINS`.
        entry_points: include the ``ghostface.plugins`` entry points of installed distributions
            (there are none in a frozen build).
        extra_builtins: more built-in plugins (modules, objects or classes) that live outside ``core``,
            such as the app's desktop notification, which needs Qt.
        external: include the folder and the entry points at all (False: safe mode, built-ins only).
        isolate: import and run folder and entry-point plugins each in a process of its own
            (:mod:`core._plugin_host`); the built-ins stay in this process.
        timeout_s: with ``isolate``, how long all the imports together may take; a plugin still
            importing then is skipped.

    Returns:
        One :class:`DiscoveredPlugin` per candidate. A name already taken by an earlier plugin gives
        an error result for the later one, so names stay unique.
    """
    found: list[DiscoveredPlugin] = []
    found.extend(_discover_builtins(BUILTIN_PLUGINS if builtins else (), extra_builtins))
    where = Path(folder) if folder is not None else paths.plugins_dir()
    if isolate and os.name != "posix":
        # The plugin host speaks over POSIX file descriptors; elsewhere plugins run on threads.
        log.info("plugin isolation is not available on this system: plugins run in the app's process")
        isolate = False
    if external and isolate:
        found.extend(_discover_isolated(where, entry_points, timeout_s))
    elif external:
        found.extend(_discover_folder(where))
        if entry_points:
            found.extend(_discover_entry_points())
    return remember_discovery(found)


def remember_discovery(found: Sequence[DiscoveredPlugin]) -> list[DiscoveredPlugin]:
    """``found`` with later plugins of a name already taken turned into errors.

    Kept for :func:`last_discovery`. Used when the built-ins and the external plugins are found apart.
    """
    unique: list[DiscoveredPlugin] = []
    taken: dict[str, DiscoveredPlugin] = {}
    for item in found:
        first = taken.get(item.name)
        if first is not None and item.ok:
            message = f"the name {item.name!r} is already used by {first.location or first.origin}"
            log.warning("plugin at %s ignored: %s", item.location, message)
            suspend = getattr(item.plugin, "suspend", None)
            if callable(suspend):  # its process is not needed
                suspend()
            unique.append(DiscoveredPlugin(item.name, item.origin, None, message, item.location))
            continue
        if item.ok:
            taken[item.name] = item
        unique.append(item)
    global _last_discovery
    _last_discovery = tuple(unique)
    return unique


def last_discovery() -> tuple[DiscoveredPlugin, ...]:
    """What the latest :func:`discover_plugins` call found (broken plugins included).

    Nothing is imported again; empty before the first call.
    """
    return _last_discovery


def warn_unknown_names(discovered: Iterable[DiscoveredPlugin], settings: PluginSettings) -> list[str]:
    """Warn about names in ``plugins.enabled`` and ``plugins.options`` that match no plugin found.

    Returns:
        The warnings, one line each.
    """
    known = {item.name for item in discovered}
    warnings: list[str] = []
    for kind, names in (("plugins.enabled", settings.enabled), ("plugins.options", settings.options)):
        for name in sorted(set(names) - known):
            warnings.append(
                f"{kind} names {name!r}, but no plugin of that name was found "
                f"(found: {', '.join(sorted(known)) or 'none'})"
            )
    for line in warnings:
        log.warning("%s", line)
    return warnings


def load_plugins(
    discovered: Iterable[DiscoveredPlugin], settings: PluginSettings, *, warn_unknown: bool = True
) -> list[LoadedPlugin]:
    """The working plugins with their effective settings and enabled state.

    Settings are the plugin's ``SETTINGS`` defaults overridden by ``settings.options[name]``, each
    coerced to its declared type and checked (see :func:`resolve_settings`): a bad value falls back to
    the default and an undeclared key is dropped, both with a warning. A name in ``settings.enabled`` or
    ``settings.options`` that matches no discovered plugin is warned about (a typo switches nothing on).
    Enabled state is ``settings.enabled[name]`` when set, else the default described in the module
    docstring. An isolated plugin that is switched off has its process ended until it is switched on.
    """
    discovered = list(discovered)
    if warn_unknown:
        warn_unknown_names(discovered, settings)
    loaded: list[LoadedPlugin] = []
    for item in discovered:
        if not item.ok or item.plugin is None:
            continue
        values, problems = resolve_settings(
            item.name, settings_schema(item.plugin), settings.options.get(item.name, {})
        )
        default_on = item.origin != Origin.BUILTIN or item.name in DEFAULT_ENABLED_BUILTINS
        enabled = bool(settings.enabled.get(item.name, default_on))
        suspend = getattr(item.plugin, "suspend", None)
        if not enabled and callable(suspend):
            suspend()
        loaded.append(
            LoadedPlugin(
                item.name,
                item.origin,
                item.plugin,
                MappingProxyType(values),
                enabled,
                item.location,
                tuple(problems),
            )
        )
    return loaded
