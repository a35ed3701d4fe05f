"""``ghostface store``: set up, upgrade and fill a shared PostgreSQL store (init, migrate, status, push, pull)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cli._common import EXIT_OK, CliError, add_common, emit, settings_from_args, store_settings
from core import paths
from core.store import postgres as pg
from core.store import transfer


def register(sub: Any) -> None:
    """Add ``store`` and its actions to the subcommand parsers ``sub``."""
    parser = sub.add_parser("store", help="set up, upgrade and fill a shared PostgreSQL store")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    helps = {
        "init": "create GhostFace's tables on an empty database (as its owner)",
        "migrate": "upgrade the tables to this GhostFace's schema (as the database owner)",
        "status": "check the connection and the schema version",
        "push": "copy a folder gallery (and an SQLite history) to the server",
        "pull": "copy the server's gallery into a folder",
    }
    for action, text in helps.items():
        p = actions.add_parser(action, help=text)
        p.add_argument(
            "--store", metavar="URL", help="the server: postgresql://user@host/db (default: the settings')"
        )
        p.add_argument("--station", metavar="NAME", help="this station's name")
        add_common(p)
        p.set_defaults(func=store)
    for name in ("init", "migrate"):
        actions.choices[name].add_argument(
            "--create-roles",
            action="store_true",
            help="also create the ghostface_admin and ghostface_station roles and grant their rights",
        )
    actions.choices["push"].add_argument("--gallery", metavar="DIR", help="the folder gallery to copy")
    actions.choices["push"].add_argument(
        "--history", metavar="FILE", help="an SQLite history to copy (its events become this station's)"
    )
    actions.choices["pull"].add_argument("--gallery", metavar="DIR", required=True, help="the folder to fill")


def store(args: argparse.Namespace) -> int:
    """Run one ``store`` action against ``--store`` (or the settings' server)."""
    settings = store_settings(args, settings_from_args(args))
    url = args.store or settings.store.url
    if not url:
        raise CliError("give the server with --store postgresql://user@host/db (or set it in the settings)")
    station = settings.store.station_name()
    where = pg.redact(url)
    summary: dict[str, Any] = {"server": where, "action": args.action}
    with pg.connect(url) as conn:
        if args.action in ("init", "migrate"):
            applied = pg.apply_migrations(conn)
            roles = pg.create_roles(conn) is None if args.create_roles else pg.grant_if_roles_exist(conn)
            summary.update(applied=applied, schema=pg.SCHEMA_VERSION, roles=roles)
            human = [
                f"{where}: schema version {pg.SCHEMA_VERSION}"
                + (f" (applied {', '.join(str(v) for v in applied)})" if applied else " (up to date)"),
                "roles ghostface_admin and ghostface_station ready" if roles else "roles not created",
            ]
        elif args.action == "status":
            version = pg.check_schema(conn, where)
            summary.update(schema=version)
            human = [f"{where}: reachable, schema version {version}"]
        else:
            pg.check_schema(conn, where)
            human, report = _transfer(args, conn, station)
            summary.update(report.__dict__)
    emit(args, summary, human)
    return EXIT_OK


def _transfer(args: argparse.Namespace, conn: Any, station: str) -> tuple[list[str], transfer.TransferReport]:
    if args.action == "pull":
        report = transfer.pull_gallery(conn, Path(args.gallery).expanduser())
        return [f"pulled into {args.gallery}: ", *report.lines()], report
    if not args.gallery and not args.history:
        raise CliError(
            "give what to push: --gallery DIR and/or --history FILE (default history: "
            f"{paths.history_path()})"
        )
    report = transfer.TransferReport()
    if args.gallery:
        gallery = Path(args.gallery).expanduser()
        if not gallery.is_dir():
            raise CliError(f"the gallery folder {gallery} does not exist")
        report = transfer.push_gallery(conn, gallery, station=station)
    if args.history:
        events = transfer.push_history(conn, Path(args.history).expanduser(), station=station)
        report.events, report.problems = events.events, report.problems + events.problems
    return ["pushed to the server:", *report.lines()], report
