"""``ghostface train`` and ``ghostface align``: the trainer's commands.

:mod:`cli.main` hands them everything after the word untouched, since each parses its own options.
The trainer's modules are imported when a command runs: they load torch, which the other commands
never need.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from cli._common import EXIT_ERROR, EXIT_OK, say
from core.errors import GhostFaceError

__all__ = [
    "add_align_arguments",
    "add_calibrate_arguments",
    "add_train_arguments",
    "main_align",
    "main_calibrate",
    "main_train",
]

log = logging.getLogger(__name__)

EXIT_STOPPED = 130


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``ghostface train`` to ``parser``."""
    parser.add_argument("--config", required=True, type=Path, help="JSON training config (see configs/)")
    parser.add_argument("--resume", type=Path, help="continue from a run's last.pt")
    parser.add_argument("--output-dir", type=Path, help="override the config's output_dir")
    parser.add_argument("--epochs", type=int, help="override the config's epochs")
    parser.add_argument("--export", type=Path, help="after training, write the best backbone here")
    parser.add_argument("--fp32", action="store_true", help="export fp32 weights (default: fp16)")
    parser.add_argument("--onnx", type=Path, help="after training, also export ONNX here")
    parser.add_argument("--json", action="store_true", help="print one JSON summary as the last line")


def add_calibrate_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``ghostface calibrate`` to ``parser``."""
    parser.add_argument(
        "--config", required=True, type=Path, help="the run's config.json (its held-out people)"
    )
    parser.add_argument("--checkpoint", required=True, type=Path, help="the backbone to calibrate")
    parser.add_argument("--pairs-per-fold", type=int, default=600, help="same and different pairs per fold")
    parser.add_argument(
        "--people",
        choices=("held-out", "trained"),
        default="held-out",
        help="pair the people the run held out (default), or as many it trained on, to measure the "
        "generalisation gap (no threshold is written from those)",
    )
    parser.add_argument(
        "--write",
        type=Path,
        help="write the checkpoint here with the calibrated threshold in its meta (fp16)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON summary as the last line")


def add_align_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``ghostface align`` to ``parser``."""
    parser.add_argument("input", type=Path, help="photos: <identity>/<photo> folders and/or loose photos")
    parser.add_argument("output", type=Path, help="where the aligned 112x112 crops are written")
    parser.add_argument("--detector", default="yunet", help="detector id (default: yunet)")
    parser.add_argument("--score", type=float, default=0.6, help="minimum detection score")
    parser.add_argument("--min-face", type=int, default=32, help="ignore faces narrower than this (pixels)")
    parser.add_argument(
        "--all-faces", action="store_true", help="keep every face (default: the largest face of each photo)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON summary as the last line")


def _parse(args: argparse.Namespace | Sequence[str] | None, add: Any, prog: str) -> argparse.Namespace:
    if isinstance(args, argparse.Namespace):
        return args
    parser = argparse.ArgumentParser(prog=prog)
    add(parser)
    return parser.parse_args(list(args) if args is not None else None)


@contextlib.contextmanager
def _graceful_stop(trainer: Any) -> Iterator[None]:
    """First Ctrl+C / SIGTERM: stop after the current batch and save; a second Ctrl+C aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        if trainer.stop and signum == signal.SIGINT:
            raise KeyboardInterrupt
        say("stopping after the current batch (the checkpoint is saved; Ctrl+C again aborts)", error=True)
        trainer.request_stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old_handler in previous.items():
            signal.signal(sig, old_handler)


def main_train(args: argparse.Namespace | Sequence[str] | None = None) -> int:
    """Run ``ghostface train``; returns 0 when done, 130 when stopped (Ctrl+C; resumable), 1 on error."""
    ns = _parse(args, add_train_arguments, "ghostface train")
    from trainer.config import load_config
    from trainer.export import export_backbone, export_onnx
    from trainer.loop import Trainer

    logging.getLogger("trainer").setLevel(logging.INFO)
    try:
        config = load_config(ns.config)
        changes: dict[str, Any] = {}
        if ns.output_dir:
            changes["output_dir"] = str(ns.output_dir.resolve())
        if ns.epochs:
            changes["epochs"] = ns.epochs
        if changes:
            config = config.replace(**changes)
        trainer = Trainer(config, resume=ns.resume, terminal=sys.stderr.isatty())
        say(f"training {config.mode} into {config.output_dir} (log: train.log there)", error=True)
        with _graceful_stop(trainer):
            result = trainer.fit()
        summary: dict[str, Any] = {
            "output_dir": str(result.output_dir),
            "last_checkpoint": str(result.last_checkpoint) if result.last_checkpoint else None,
            "best_backbone": str(result.best_backbone) if result.best_backbone else None,
            "epochs_completed": result.epochs_completed,
            "best_val_accuracy": result.best_accuracy,
            "stopped": result.stopped,
            "early_stopped": result.early_stopped,
        }
        if ns.export and result.best_backbone:
            summary["exported"] = str(export_backbone(result.best_backbone, ns.export, half=not ns.fp32))
        if ns.onnx and result.best_backbone:
            onnx_path = export_onnx(result.best_backbone, ns.onnx)
            summary["onnx"] = str(onnx_path) if onnx_path else None
    except (GhostFaceError, FileNotFoundError, ValueError) as exc:
        say(f"error: {exc}", error=True)
        return EXIT_ERROR
    for rec in result.history:
        say("  " + ", ".join(f"{k} {v}" for k, v in rec.items()))
    say(
        f"{result.epochs_completed} epochs; best validation accuracy "
        f"{'n/a' if result.best_accuracy is None else f'{result.best_accuracy:.4f}'}; backbone {result.best_backbone}"
    )
    if ns.json:
        say(json.dumps(summary))
    return EXIT_STOPPED if result.stopped else EXIT_OK


def main_calibrate(args: argparse.Namespace | Sequence[str] | None = None) -> int:
    """Run ``ghostface calibrate``: the threshold at which a checkpoint accepts strangers as often as SFace.

    Returns 0, or 1 when the config or checkpoint is unusable.
    """
    ns = _parse(args, add_calibrate_arguments, "ghostface calibrate")
    from trainer.calibrate import calibrate_threshold, heldout_crops, trained_crops
    from trainer.config import load_config
    from trainer.export import export_backbone

    if ns.write and ns.people == "trained":
        say(
            "error: --write takes a threshold from held-out people only, not from --people trained",
            error=True,
        )
        return EXIT_ERROR
    try:
        config = load_config(ns.config)
        people = trained_crops(config) if ns.people == "trained" else heldout_crops(config)
        result = calibrate_threshold(
            ns.checkpoint, people, pairs_per_fold=ns.pairs_per_fold, seed=config.seed
        )
        summary = {**result.to_dict(), "people": ns.people}
        if ns.write:
            meta = {"similarity_threshold": result.threshold, "calibration": result.to_dict()}
            summary["written"] = str(export_backbone(ns.checkpoint, ns.write, meta=meta, half=True))
    except (GhostFaceError, FileNotFoundError, ValueError) as exc:
        say(f"error: {exc}", error=True)
        return EXIT_ERROR
    say(
        f"threshold {result.threshold:.4f}: accepts {result.far:.2%} of {result.different_pairs} different-person "
        f"pairs and {result.tar:.2%} of {result.same_pairs} same-person pairs ({result.identities} {ns.people} people); "
        f"{result.reference} at {result.reference_threshold}: {result.reference_far:.2%} / {result.reference_tar:.2%}; "
        f"10-fold accuracy {result.accuracy:.2%} (reference {result.reference_accuracy:.2%})"
    )
    if ns.json:
        say(json.dumps(summary))
    return EXIT_OK


def main_align(args: argparse.Namespace | Sequence[str] | None = None) -> int:
    """Run ``ghostface align``; returns 0, or 1 when the input is unusable or no face was found at all."""
    ns = _parse(args, add_align_arguments, "ghostface align")
    from trainer.prepare import align_folder

    try:
        summary = align_folder(
            ns.input,
            ns.output,
            detector_name=ns.detector,
            score_threshold=ns.score,
            min_face_px=ns.min_face,
            all_faces=ns.all_faces,
        )
    except (GhostFaceError, FileNotFoundError, ValueError) as exc:
        say(f"error: {exc}", error=True)
        return EXIT_ERROR
    for line in summary["failures"][:20]:
        say(f"  skipped {line}", error=True)
    say(
        f"{summary['written']} crops written to {ns.output} from {summary['photos']} photos "
        f"({summary['skipped']} already there, {summary['no_face']} without a face, "
        f"{summary['unreadable']} unreadable)"
    )
    if ns.json:
        say(json.dumps(summary))
    produced = summary["written"] + summary["skipped"]
    return EXIT_OK if produced or not summary["photos"] else EXIT_ERROR
