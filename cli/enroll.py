"""``ghostface enroll``: add photos of a person to a gallery."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cli._common import (
    EXIT_ERROR,
    EXIT_OK,
    add_common,
    add_gallery,
    add_models,
    emit,
    open_gallery,
    progress,
    say,
    settings_from_args,
)
from core.engine import build_detector, build_embedder
from core.gallery import validate_person_name


def register(sub: Any) -> None:
    """Add ``enroll`` and its options to the subcommand parsers ``sub``."""
    parser = sub.add_parser("enroll", help="add photos of a person to a gallery")
    add_gallery(parser, required=True)
    parser.add_argument("--person", required=True, help="the person's name (their folder name)")
    parser.add_argument("photos", nargs="+", metavar="PHOTO", help="photo files")
    add_models(parser)
    add_common(parser)
    parser.set_defaults(func=enroll)


def enroll(args: argparse.Namespace) -> int:
    """Add ``photos`` to ``--person``'s folder of the gallery, with a report per photo."""
    name = validate_person_name(args.person)
    settings = settings_from_args(args)
    gallery = open_gallery(args, settings, build_detector(settings), build_embedder(settings))
    try:
        report = gallery.add_photos(name, [Path(p) for p in args.photos], progress=progress("enrol"))
    finally:
        gallery.close()  # a shared store's connections and listener, or the cache file
    results = [
        {"photo": str(r.path), "status": str(r.status), "faces": r.faces, "message": r.message}
        for r in report.results
    ]
    summary = {"person": report.person, "added": report.added, "photos": len(results), "results": results}
    human = [f"{report.person}: {report.added} of {len(results)} photos enrolled"]
    human.extend(f"  {r.message}" for r in report.problems)
    emit(args, summary, human)
    if report.added == 0:
        say(f"error: no photo of {report.person} was enrolled", error=True)
        return EXIT_ERROR
    return EXIT_OK
