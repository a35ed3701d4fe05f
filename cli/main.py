"""The ``ghostface`` command line: run, enroll, eval, bench, soak, plugins, store, align and train.

Every subcommand prints a short human summary, or with ``--json`` one JSON object as the last line of
standard output. Logging goes to standard error. Exit status: 0 success, 1 error (one clear line, no
traceback unless ``--verbose``), 2 bad usage.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from cli import bench, enroll, evaluate, plugins, run, soak, store, train
from cli._common import EXIT_ERROR, CliError, log, say
from core.errors import GhostFaceError
from core.runtime import configure_threads

__all__ = ["CliError", "build_parser", "main"]

# The trainer's subcommands parse their own options: main() hands them everything after the word.
_TRAINER_HELP = {
    "align": "prepare a training set of aligned 112x112 crops (the trainer's options follow)",
    "train": "train or fine-tune GhostFaceNetV2 from a JSON config (the trainer's options follow)",
    "calibrate": "a checkpoint's similarity threshold, matched to SFace's false-accept rate on the run's "
    "held-out people (the trainer's options follow)",
}


def _run_trainer(word: str, argv: list[str]) -> int:
    # Looked up on the module at call time, so a test can stand in for the (slow) trainer.
    entry = {"train": train.main_train, "align": train.main_align, "calibrate": train.main_calibrate}[word]
    return int(entry(argv) or 0)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``ghostface``."""
    parser = argparse.ArgumentParser(
        prog="ghostface",
        description="Real-time face recognition: the engine of GhostFace Desktop, without the GUI.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in (run, enroll, evaluate, bench, soak, plugins, store):
        command.register(sub)
    for word, text in _TRAINER_HELP.items():
        # Listed here for --help only; main() never lets argparse parse what follows the word.
        hook = sub.add_parser(word, help=text, add_help=False)
        hook.add_argument("trainer_args", nargs=argparse.REMAINDER)
    return parser


def _configure_logging(verbose: int) -> None:
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if verbose <= 0:
        # Long evaluations still say how far they are.
        log.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ghostface`` console script; returns the exit status."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    trainer_word = argv[0] if argv and argv[0] in _TRAINER_HELP else None
    args = argparse.Namespace(verbose=0) if trainer_word else parser.parse_args(argv)
    _configure_logging(getattr(args, "verbose", 0))
    try:
        # ``train`` sets torch's threads from its own config; every other command runs the engine.
        configure_threads(manage_torch=trainer_word != "train")
        if trainer_word:
            return _run_trainer(trainer_word, argv[1:])
        return int(args.func(args))
    except GhostFaceError as exc:
        say(f"error: {exc}", error=True)
        return EXIT_ERROR
    except KeyboardInterrupt:
        say("interrupted", error=True)
        return 130
    except (OSError, ValueError) as exc:
        if getattr(args, "verbose", 0):
            log.exception("failed")
        say(f"error: {exc}", error=True)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
