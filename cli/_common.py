"""What every ``ghostface`` subcommand shares: its errors, settings, output and gallery options."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from core import engine
from core.detection import Detector
from core.embedding import Embedder
from core.errors import GhostFaceError
from core.gallery import Gallery
from core.settings import Settings, describe_validation_error, load_settings

log = logging.getLogger("ghostface")

EXIT_OK, EXIT_ERROR = 0, 1


class CliError(GhostFaceError):
    """A command that cannot do what was asked (bad combination of arguments, nothing enrolled, ...)."""


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Defaults (or ``--settings FILE``), then the command-line overrides."""
    settings = Settings()
    if getattr(args, "settings", None):
        result = load_settings(Path(args.settings))
        for warning in result.warnings:
            log.warning("%s", warning)
        settings = result.settings
    detection: dict[str, Any] = {}
    recognition: dict[str, Any] = {}
    if getattr(args, "detector", None):
        detection["detector"] = args.detector
    if getattr(args, "embedder", None):
        recognition["embedder"] = args.embedder
    if getattr(args, "device", None):
        recognition["device"] = args.device
    if getattr(args, "threshold", None) is not None:
        recognition["similarity_threshold"] = args.threshold
        recognition["threshold_from_model"] = False
    if getattr(args, "margin", None) is not None:
        recognition["margin"] = args.margin
    try:
        return settings.replace(detection=detection, recognition=recognition)
    except ValidationError as exc:
        # One line a person can act on, not pydantic's multi-line dump with its documentation links.
        raise CliError(f"invalid option value: {describe_validation_error(exc)}") from None
    except ValueError as exc:
        raise CliError(f"invalid option value: {exc}") from exc


def say(line: str, *, error: bool = False) -> None:
    """The command line's only way to talk to a person (library code logs instead)."""
    stream = sys.stderr if error else sys.stdout
    stream.write(line + "\n")
    stream.flush()


def emit(args: argparse.Namespace, summary: dict[str, Any], human: Sequence[str]) -> None:
    if args.json:
        say(json.dumps(summary, ensure_ascii=False, default=str))
    else:
        for line in human:
            say(line)


def progress(label: str, every: float = 0.1) -> Callable[[int, int, str], None]:
    """A progress callback logging about every tenth of the work (long evaluations)."""
    state = {"next": 0.0, "start": time.perf_counter()}

    def report(done: int, total: int, item: str) -> None:
        # Short jobs finish before anyone waits for them: only long ones report.
        if total >= 100 and (done / total >= state["next"] or done == total):
            state["next"] = done / total + every
            log.info("%s: %d/%d (%.0f s)", label, done, total, time.perf_counter() - state["start"])

    return report


def store_settings(args: argparse.Namespace, settings: Settings) -> Settings:
    """The settings with ``--store`` and ``--station`` applied (the shared store when a URL is given)."""
    store: dict[str, Any] = {}
    if getattr(args, "store", None):
        from core.store.postgres import strip_password

        # The typed URL is used as it is (libpq may take a password from it); the settings never hold one.
        store.update(backend="postgresql", url=strip_password(args.store)[0])
    if getattr(args, "station", None):
        store["station"] = args.station
    if not store:
        return settings
    try:
        return settings.replace(store=store)
    except ValidationError as exc:
        raise CliError(f"invalid option value: {describe_validation_error(exc)}") from None


def store_url(args: argparse.Namespace) -> str | None:
    """The server of ``--store`` as typed (libpq may use a password in it; the settings never keep one)."""
    return getattr(args, "store", None) or None


def open_gallery(
    args: argparse.Namespace, settings: Settings, detector: Detector, embedder: Embedder
) -> Gallery:
    """The gallery of ``--gallery`` (or of ``--store``), built by the engine's factory as the app builds it."""
    if store_url(args):
        return engine.open_shared_gallery(  # type: ignore[return-value]
            store_settings(args, settings),
            detector,
            embedder,
            conninfo=store_url(args),
            allow_largest=getattr(args, "allow_largest", False),
        )
    if not getattr(args, "gallery", None):
        raise CliError("give a gallery: --gallery DIR (a folder) or --store postgresql://... (a server)")
    return engine.open_gallery(
        settings.replace(gallery_dir=str(args.gallery)),
        detector,
        embedder,
        cache_path=Path(args.cache) if getattr(args, "cache", None) else None,
        allow_largest=getattr(args, "allow_largest", False),
    )


def sync_gallery(gallery: Any) -> tuple[dict[str, Any], list[str]]:
    report = gallery.sync(progress=progress("gallery"))
    problems = [p.message for p in report.problems]
    for message in problems:
        log.warning("gallery: %s", message)
    info = {
        "people": report.people,
        "photos": report.photos,
        "usable": report.usable,
        "embedded_now": report.embedded,
        "problems": problems,
    }
    return info, problems


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument(
        "--settings", metavar="FILE", help="a settings JSON file (default: built-in defaults)"
    )


def add_models(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--detector", metavar="ID", help="face detector: yunet (default), retinaface-mnet025")
    parser.add_argument(
        "--embedder",
        metavar="ID[:CHECKPOINT]",
        help="face embedder: sface (default), ghostfacenetv2[:file.pt]",
    )
    parser.add_argument("--device", metavar="DEV", help="cpu (default) or cuda:N for PyTorch models")


def add_gallery(parser: argparse.ArgumentParser, *, required: bool) -> None:
    # With a shared store the gallery is on the server: "required" means "--gallery or --store".
    del required
    parser.add_argument("--gallery", metavar="DIR", help="gallery folder, one folder per person")
    add_store(parser)
    parser.add_argument(
        "--cache", metavar="FILE", help="embedding cache database (default: in the user cache)"
    )
    parser.add_argument(
        "--allow-largest", action="store_true", help="use the largest face of photos showing several faces"
    )


def add_store(parser: argparse.ArgumentParser) -> None:
    """``--store URL`` and ``--station NAME``: use a shared PostgreSQL store instead of this computer's."""
    parser.add_argument(
        "--store",
        metavar="URL",
        help="a shared PostgreSQL store (postgresql://user@host/db?sslmode=..., or service=NAME) instead of "
        "--gallery; keep the password in ~/.pgpass",
    )
    parser.add_argument("--station", metavar="NAME", help="this station's name in the shared history")
