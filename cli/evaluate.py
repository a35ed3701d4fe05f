"""``ghostface eval lfw`` and ``ghostface eval ident``: measure accuracy."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cli._common import EXIT_OK, add_common, add_models, emit, progress, settings_from_args
from core.detection import Detector
from core.embedding import Embedder
from core.engine import build_detector, build_embedder
from core.evaluation import evaluate_identification, evaluate_lfw


def register(sub: Any) -> None:
    """Add ``eval`` and its two protocols to the subcommand parsers ``sub``."""
    ev = sub.add_parser("eval", help="measure accuracy")
    ev_sub = ev.add_subparsers(dest="eval_command", metavar="PROTOCOL", required=True)
    lfw = ev_sub.add_parser("lfw", help="LFW pairs, 10-fold accuracy and TAR@FAR")
    lfw.add_argument("--images", required=True, metavar="DIR", help="LFW folder (<Name>/<Name>_0001.jpg)")
    lfw.add_argument("--pairs", required=True, metavar="FILE", help="pairs.txt")
    lfw.add_argument("--folds", type=int, metavar="N", help="number of folds (default: from the pairs file)")
    lfw.add_argument("--limit-pairs", type=int, metavar="N", help="score about N pairs only (smoke test)")
    add_models(lfw)
    add_common(lfw)
    lfw.set_defaults(func=eval_lfw)
    ident = ev_sub.add_parser("ident", help="open-set identification: rank-1, DIR@FPIR")
    ident.add_argument("--gallery", required=True, metavar="DIR", help="one folder of photos per person")
    ident.add_argument("--probes", required=True, metavar="DIR", help="probe photos as <person>/<photo>")
    ident.add_argument("--distractors", metavar="DIR", help="photos of people not in the gallery")
    add_models(ident)
    add_common(ident)
    ident.set_defaults(func=eval_ident)


def _eval_models(args: argparse.Namespace) -> tuple[Detector, Embedder]:
    settings = settings_from_args(args)
    # Evaluation photos are small (LFW is 250x250): never downscaled below the model's own size.
    return build_detector(settings, evaluation=True), build_embedder(settings)


def eval_lfw(args: argparse.Namespace) -> int:
    """LFW pairs: 10-fold accuracy and TAR at a fixed FAR."""
    detector, embedder = _eval_models(args)
    result = evaluate_lfw(
        Path(args.images),
        Path(args.pairs),
        detector,
        embedder,
        folds=args.folds,
        limit_pairs=args.limit_pairs,
        progress=progress("lfw"),
    )
    v = result.verification
    summary = {
        "accuracy": round(v.accuracy, 6),
        "std": round(v.std, 6),
        "pairs": result.pairs,
        "images": result.images,
        "no_face": result.no_face,
        "pairs_without_face": result.pairs_without_face,
        "unreadable": result.unreadable,
        "tar_at_far": round(v.tar_at_far, 6),
        "tar_std": round(v.tar_std, 6),
        "far": round(v.far, 6),
        "target_far": v.target_far,
        "threshold": round(v.threshold, 4),
        "folds": len(v.fold_accuracies),
        "detector": detector.model_id,
        "embedder": embedder.model_id,
        "seconds": round(result.seconds, 1),
    }
    human = [
        f"LFW accuracy {100 * v.accuracy:.2f}% ± {100 * v.std:.2f} over {result.pairs} pairs "
        f"({len(v.fold_accuracies)} folds; {detector.model_id} + {embedder.model_id})",
        f"TAR {100 * v.tar_at_far:.2f}% at FAR {v.target_far:g} (reached {v.far:.4f}); "
        f"mean threshold (cosine) {v.threshold:.3f}",
        f"images without a face: {result.no_face} ({result.pairs_without_face} pairs scored as different)",
    ]
    emit(args, summary, human)
    return EXIT_OK


def eval_ident(args: argparse.Namespace) -> int:
    """Open-set identification: rank-1 and DIR at fixed FPIRs."""
    detector, embedder = _eval_models(args)
    result = evaluate_identification(
        Path(args.gallery),
        Path(args.probes),
        detector,
        embedder,
        distractors_dir=Path(args.distractors) if args.distractors else None,
        progress=progress("ident"),
    )
    summary = {
        "rank1": round(result.rank1, 6),
        "dir_at_fpir": {k: (None if v is None else round(v, 6)) for k, v in result.dir_at_fpir.items()},
        "thresholds": result.thresholds,
        "gallery_people": result.gallery_people,
        "mated": result.mated,
        "non_mated": result.non_mated,
        "no_face": result.no_face,
        "detector": detector.model_id,
        "embedder": embedder.model_id,
    }
    dirs = ", ".join(
        f"DIR@FPIR={k}: {'n/a' if v is None else f'{100 * v:.2f}%'}" for k, v in result.dir_at_fpir.items()
    )
    human = [
        f"rank-1 {100 * result.rank1:.2f}% over {result.mated} mated probes "
        f"({result.gallery_people} gallery people, {result.non_mated} non-mated probes)",
        dirs,
    ]
    emit(args, summary, human)
    return EXIT_OK
