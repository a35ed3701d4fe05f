"""``ghostface soak``: loop a video through the whole engine for a while and watch the resources."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from cli._common import EXIT_OK, CliError, add_common, add_models, say, settings_from_args
from core.soak import SoakSample, run_soak


def register(sub: Any) -> None:
    """Add ``soak`` and its options to the subcommand parsers ``sub``."""
    parser = sub.add_parser(
        "soak",
        help="loop a video through the full pipeline with history and plugins; print resources each minute",
    )
    parser.add_argument("--source", required=True, help="video file to loop (e.g. the demo clip)")
    parser.add_argument(
        "--gallery", required=True, metavar="DIR", help="gallery folder, one folder per person"
    )
    parser.add_argument("--minutes", type=float, required=True, help="how long to run")
    parser.add_argument(
        "--interval", type=float, default=60.0, metavar="S", help="seconds between samples (default 60)"
    )
    parser.add_argument(
        "--work-dir",
        metavar="DIR",
        help="keep the soak's history, embedding cache and plugin files here "
        "(default: a temporary folder, removed at the end; your own history is never used)",
    )
    add_models(parser)
    add_common(parser)
    parser.set_defaults(func=soak)


def soak(args: argparse.Namespace) -> int:
    """Run the soak, printing one line (or, with ``--json``, one JSON object) per sample."""
    if args.minutes <= 0 or args.interval <= 0:
        raise CliError("--minutes and --interval must be more than 0")
    if not Path(args.source).expanduser().is_file():
        raise CliError(f"--source {args.source} is not a video file")
    settings = settings_from_args(args)

    def show(sample: SoakSample) -> None:
        say(json.dumps(dataclasses.asdict(sample)) if args.json else sample.line())

    report = run_soak(
        Path(args.source).expanduser(),
        Path(args.gallery).expanduser(),
        args.minutes,
        interval_s=args.interval,
        settings=settings,
        on_sample=show,
        work_dir=Path(args.work_dir).expanduser() if args.work_dir else None,
    )
    first, last = report.samples[0], report.samples[-1]
    summary = {
        "minutes": round(last.elapsed_s / 60.0, 2),
        "frames": last.frames,
        "events": last.events,
        "frame_errors": report.errors,
        "rss_mb": [first.rss_mb, last.rss_mb],
        "threads": [first.threads, last.threads],
        "open_files": [first.open_files, last.open_files],
        "plugins": report.plugins,
    }
    if args.json:
        say(json.dumps(summary))
    else:

        def mib(value: float | None) -> str:
            return f"{value:.0f}" if value is not None else "?"

        say(
            f"soak done: {last.frames} frames, {last.events} events, {report.errors} frame errors; "
            f"RSS {mib(first.rss_mb)} -> {mib(last.rss_mb)} MiB, threads {first.threads} -> {last.threads}, "
            f"open files {first.open_files} -> {last.open_files}"
        )
    return EXIT_OK
