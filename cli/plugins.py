"""``ghostface plugins list|test``: what a plugin author (or a station's admin) needs to see and check.

Both use the engine's own assembly (:func:`core.events.list_plugins`, :func:`core.events.test_plugin`),
so a plugin is found, loaded, isolated and configured exactly as the app does it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cli._common import EXIT_ERROR, EXIT_OK, CliError, add_common, emit, settings_from_args
from core import paths
from core.settings import Settings, load_settings

__all__ = ["plugin_lines", "plugins_summary", "register", "user_settings"]


def register(sub: Any) -> None:
    """Add ``plugins list`` and ``plugins test`` to the subcommand parsers ``sub``."""
    parser = sub.add_parser("plugins", help="list the plugins, or send one a test event")
    commands = parser.add_subparsers(dest="plugins_command", metavar="ACTION", required=True)
    listing = commands.add_parser(
        "list", help="every plugin found (built-in, plugins folder, installed): state, last error, settings"
    )
    listing.add_argument(
        "--no-plugins",
        action="store_true",
        help="safe mode: list the built-ins only (nothing from the plugins folder or packages is imported)",
    )
    _add_folder(listing)
    add_common(listing)
    listing.set_defaults(func=list_command)
    test = commands.add_parser(
        "test", help="start one plugin, hand it a made-up 'recognized' event, stop it, and report"
    )
    test.add_argument("name", help="the plugin's name, as `ghostface plugins list` shows it")
    test.add_argument("--timeout", type=float, default=10.0, metavar="S", help="give up after S seconds")
    _add_folder(test)
    add_common(test)
    test.set_defaults(func=test_command)


def _add_folder(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plugins-dir", metavar="DIR", help="the plugins folder (default: the user's, as the app uses)"
    )


def user_settings(args: argparse.Namespace) -> Settings:
    """``--settings FILE`` when given, else the user's settings file (the app's), else the defaults."""
    if getattr(args, "settings", None):
        return settings_from_args(args)
    path = paths.settings_path()
    if path.exists():
        result = load_settings(path)
        return result.settings
    return Settings()


def plugins_summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The JSON ``plugins`` object of ``run``/``bench``: name to its row (broken and refused included)."""
    return {row["name"]: {k: v for k, v in row.items() if k != "name"} for row in rows}


def plugin_lines(rows: list[dict[str, Any]]) -> list[str]:
    """One line per plugin for a person."""
    lines = []
    for row in rows:
        counts = (
            f", {row['calls']} calls, {row['failures']} failures, {row['dropped']} dropped"
            if row.get("calls") or row.get("failures") or row.get("dropped")
            else ""
        )
        reason = row.get("last_error") or row.get("problem")  # a failure, or what a degraded plugin says
        error = f": {reason}" if reason else ""
        busy = f" (in {row['busy']})" if row.get("busy") else ""
        lines.append(f"  {row['name']} [{row.get('origin', '')}] {row['state']}{busy}{counts}{error}")
        for problem in row.get("problems") or ():
            lines.append(f"      setting problem: {problem}")
    return lines


def list_command(args: argparse.Namespace) -> int:
    """``ghostface plugins list``."""
    from core.events import list_plugins

    folder = Path(args.plugins_dir) if args.plugins_dir else paths.plugins_dir()
    rows = list_plugins(user_settings(args), folder=folder, plugins=not args.no_plugins)
    human = [f"plugins folder: {folder}", f"settings file: {paths.settings_path()}", *plugin_lines(rows)]
    emit(
        args,
        {"plugins_dir": str(folder), "settings_file": str(paths.settings_path()), "plugins": rows},
        human,
    )
    return EXIT_OK


def test_command(args: argparse.Namespace) -> int:
    """``ghostface plugins test NAME``: exit status 0 when the plugin took the event without an error."""
    from core.events import test_plugin

    if args.timeout <= 0:
        raise CliError(f"--timeout must be more than 0, not {args.timeout:g}")
    folder = Path(args.plugins_dir) if args.plugins_dir else None
    result = test_plugin(user_settings(args), args.name, folder=folder, timeout_s=args.timeout)
    summary = {
        "name": result.name,
        "ok": result.ok,
        "state": result.state,
        "message": result.message,
        "seconds": round(result.seconds, 3),
        "plugin": dict(result.report),
    }
    emit(args, summary, [f"{result.name}: {result.message}"])
    return EXIT_OK if result.ok else EXIT_ERROR
