"""The ``ghostface`` command line: run, enroll, eval, bench (and the trainer's align and train).

Every subcommand prints a short human summary, or with ``--json`` one JSON object as the last line of
standard output. Logging goes to standard error. Exit status: 0 success, 1 error (one clear line, no
traceback unless ``--verbose``), 2 bad usage.
"""

from __future__ import annotations

import os

from core.runtime import configure_threads, current_policy

# The thread policy (core.runtime: one BLAS thread, one torch thread, a value the user set wins) must be
# in force before numpy loads its BLAS, so it is set when this module is imported, ahead of the imports
# below; main() confirms it once it knows the subcommand.
configure_threads(manage_torch=False)

import argparse  # noqa: E402 - after the thread policy above
import importlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from core.errors import GhostFaceError  # noqa: E402
from core.settings import Settings, load_settings  # noqa: E402
from core.types import Face, FrameResult  # noqa: E402

__all__ = ["build_parser", "main"]

log = logging.getLogger("ghostface")

_EXIT_OK, _EXIT_ERROR = 0, 1
# Subcommands that belong to the trainer: word -> function of ``trainer.cli`` called with the arguments.
_TRAINER_COMMANDS = {"align": "main_align", "train": "main_train"}


class CliError(GhostFaceError):
    """A command that cannot do what was asked (bad combination of arguments, nothing enrolled, ...)."""


# ------------------------------------------------------------------------------------------ helpers


def _settings(args: argparse.Namespace) -> Settings:
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
    except ValueError as exc:
        raise CliError(f"invalid option value: {exc}") from exc


def _say(line: str, *, error: bool = False) -> None:
    """The command line's only way to talk to a person (library code logs instead)."""
    stream = sys.stderr if error else sys.stdout
    stream.write(line + "\n")
    stream.flush()


def _emit(args: argparse.Namespace, summary: dict[str, Any], human: Sequence[str]) -> None:
    if args.json:
        _say(json.dumps(summary, ensure_ascii=False, default=str))
    else:
        for line in human:
            _say(line)


def _progress(label: str, every: float = 0.1) -> Callable[[int, int, str], None]:
    """A progress callback logging about every tenth of the work (long evaluations)."""
    state = {"next": 0.0, "start": time.perf_counter()}

    def report(done: int, total: int, item: str) -> None:
        # Short jobs finish before anyone waits for them: only long ones report.
        if total >= 100 and (done / total >= state["next"] or done == total):
            state["next"] = done / total + every
            log.info("%s: %d/%d (%.0f s)", label, done, total, time.perf_counter() - state["start"])

    return report


def _open_gallery(args: argparse.Namespace, detector: Any, embedder: Any) -> Any:
    from core.gallery import Gallery

    return Gallery(
        Path(args.gallery),
        embedder,
        detector,
        cache_path=Path(args.cache) if getattr(args, "cache", None) else None,
        allow_largest=getattr(args, "allow_largest", False),
    )


def _sync_gallery(gallery: Any) -> tuple[dict[str, Any], list[str]]:
    report = gallery.sync(progress=_progress("gallery"))
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


# -------------------------------------------------------------------------------------------- run


_GREEN, _RED, _WHITE = (80, 200, 80), (60, 60, 230), (255, 255, 255)


def _annotate(frame: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
    """A copy of the frame with a box and a label per face (for ``--output``)."""
    out = frame.copy()
    for face in faces:
        x1, y1, x2, y2 = (int(round(float(v))) for v in face.detection.box)
        colour = _GREEN if face.person else _RED
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 2)
        label = f"{face.person or 'Unknown'} {face.similarity:.2f}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        top = max(0, y1 - th - base - 4)
        cv2.rectangle(out, (x1, top), (x1 + tw + 4, top + th + base + 4), colour, cv2.FILLED)
        cv2.putText(out, label, (x1 + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5, _WHITE, 1, cv2.LINE_AA)
    return out


def _is_video(path: Path) -> bool:
    from core._image import IMAGE_SUFFIXES

    return path.is_file() and path.suffix.lower() not in IMAGE_SUFFIXES | {".tif", ".tiff"}


def _cmd_run(args: argparse.Namespace) -> int:
    from core.capture import open_source
    from core.pipeline import Pipeline

    settings = _settings(args)
    if Path(args.source).expanduser().exists() and not _is_video(Path(args.source)):
        # Each image of a folder is its own scene: one decision names a face, and an unknown face is
        # reported at once (there is no track to vote over or wait on).
        settings = settings.replace(tracking={"confirm_votes": 1}, events={"unknown_after_s": 0.0})
    source = open_source(args.source, loop=False)
    events_file = None
    writer: cv2.VideoWriter | None = None
    kinds: Counter[str] = Counter()
    recognised: Counter[str] = Counter()
    frames = 0
    start = time.perf_counter()
    interrupted = False
    try:
        pipeline = Pipeline(settings, source=str(args.source))
        gallery = _open_gallery(args, pipeline.detector, pipeline.embedder)
        gallery_info, _ = _sync_gallery(gallery)
        pipeline.set_gallery(gallery)
        if gallery_info["usable"] == 0:
            log.warning("the gallery %s has no usable photo: every face will be Unknown", args.gallery)
        if args.events:
            Path(args.events).parent.mkdir(parents=True, exist_ok=True)
            events_file = open(args.events, "w", encoding="utf-8")  # noqa: SIM115 - closed in finally

        def write_events(result_events: Sequence[Any]) -> None:
            for event in result_events:
                kinds[str(event.kind)] += 1
                if event.person and str(event.kind) == "recognized":
                    recognised[event.person] += 1
                if events_file is not None:
                    events_file.write(json.dumps(event.to_dict(), ensure_ascii=False) + "\n")
                    events_file.flush()

        try:
            for frame in source:
                result: FrameResult = pipeline.process(
                    frame.image, frame.index, frame.timestamp, frame.decode_ms
                )
                frames += 1
                write_events(result.events)
                if args.output:
                    if writer is None:
                        h, w = frame.image.shape[:2]
                        fps = source.fps or 25.0
                        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
                        writer = cv2.VideoWriter(
                            str(args.output), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h)
                        )
                        if not writer.isOpened():
                            raise CliError(f"cannot write the video {args.output} (use a .mp4 or .avi name)")
                    writer.write(_annotate(frame.image, result.faces))
                if args.max_frames and frames >= args.max_frames:
                    break
        except KeyboardInterrupt:
            interrupted = True
        write_events(pipeline.flush_events())
    finally:
        source.close()
        if writer is not None:
            writer.release()
        if events_file is not None:
            events_file.close()
    seconds = time.perf_counter() - start
    summary = {
        "frames": frames,
        "seconds": round(seconds, 3),
        "fps": round(frames / seconds, 2) if seconds > 0 else None,
        "events": dict(kinds),
        "recognized": sorted(recognised),
        "gallery": gallery_info,
        "events_file": args.events,
        "output": args.output,
        "interrupted": interrupted,
    }
    human = [
        f"{frames} frames in {seconds:.1f} s ({summary['fps']} fps)",
        f"recognised: {', '.join(sorted(recognised)) or 'nobody'}",
        f"events: {', '.join(f'{k} {v}' for k, v in sorted(kinds.items())) or 'none'}",
    ]
    if args.events:
        human.append(f"events written to {args.events}")
    if args.output:
        human.append(f"annotated video written to {args.output}")
    _emit(args, summary, human)
    return _EXIT_OK


# ----------------------------------------------------------------------------------------- enroll


def _cmd_enroll(args: argparse.Namespace) -> int:
    from core.detection import create_detector
    from core.embedding import create_embedder
    from core.gallery import validate_person_name

    name = validate_person_name(args.person)
    settings = _settings(args)
    detector = create_detector(
        settings.detection.detector,
        score_threshold=settings.detection.score_threshold,
        nms_threshold=settings.detection.nms_threshold,
        device=settings.recognition.device,
        max_side=settings.detection.max_side_px,
    )
    embedder = create_embedder(settings.recognition.embedder, device=settings.recognition.device)
    gallery = _open_gallery(args, detector, embedder)
    report = gallery.add_photos(name, [Path(p) for p in args.photos], progress=_progress("enrol"))
    results = [
        {"photo": str(r.path), "status": str(r.status), "faces": r.faces, "message": r.message}
        for r in report.results
    ]
    summary = {"person": report.person, "added": report.added, "photos": len(results), "results": results}
    human = [f"{report.person}: {report.added} of {len(results)} photos enrolled"]
    human.extend(f"  {r.message}" for r in report.problems)
    _emit(args, summary, human)
    if report.added == 0:
        _say(f"error: no photo of {report.person} was enrolled", error=True)
        return _EXIT_ERROR
    return _EXIT_OK


# ------------------------------------------------------------------------------------------- eval


def _eval_models(args: argparse.Namespace) -> tuple[Any, Any]:
    from core.detection import create_detector
    from core.embedding import create_embedder

    settings = _settings(args)
    # Evaluation photos are small (LFW is 250x250): detect at full resolution, never downscaled.
    detector = create_detector(
        settings.detection.detector,
        score_threshold=settings.detection.score_threshold,
        nms_threshold=settings.detection.nms_threshold,
        device=settings.recognition.device,
        max_side=None,
    )
    embedder = create_embedder(settings.recognition.embedder, device=settings.recognition.device)
    return detector, embedder


def _cmd_eval_lfw(args: argparse.Namespace) -> int:
    from core.evaluation import evaluate_lfw

    detector, embedder = _eval_models(args)
    result = evaluate_lfw(
        Path(args.images),
        Path(args.pairs),
        detector,
        embedder,
        folds=args.folds,
        limit_pairs=args.limit_pairs,
        progress=_progress("lfw"),
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
    _emit(args, summary, human)
    return _EXIT_OK


def _cmd_eval_ident(args: argparse.Namespace) -> int:
    from core.evaluation import evaluate_identification

    detector, embedder = _eval_models(args)
    result = evaluate_identification(
        Path(args.gallery),
        Path(args.probes),
        detector,
        embedder,
        distractors_dir=Path(args.distractors) if args.distractors else None,
        progress=_progress("ident"),
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
    _emit(args, summary, human)
    return _EXIT_OK


# ------------------------------------------------------------------------------------------ bench


def bench_match(dim: int, gallery_size: int, *, people: int | None = None, repeats: int = 200) -> float:
    """Median milliseconds to match one face against a random gallery of ``gallery_size`` photos."""
    from core.matching import Matcher

    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((gallery_size, dim), dtype=np.float32)
    n_people = people or max(1, gallery_size // 5)
    labels = [f"person {i % n_people}" for i in range(gallery_size)]
    matcher = Matcher(0.36, 0.05)
    matcher.set_gallery(matrix, labels)
    query = rng.standard_normal((1, dim), dtype=np.float32)
    for _ in range(10):
        matcher.match(query)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        matcher.match(query)
        times.append((time.perf_counter() - t) * 1000.0)
    return float(statistics.median(times))


def _cmd_bench(args: argparse.Namespace) -> int:
    from core.pipeline import Pipeline

    settings = _settings(args)
    tracked = Pipeline(settings, source=str(args.source))
    gallery_info = None
    gallery = None
    if args.gallery:
        gallery = _open_gallery(args, tracked.detector, tracked.embedder)
        gallery_info, _ = _sync_gallery(gallery)
        tracked.set_gallery(gallery)
    # The baseline shares the models and sees the very same decoded frames, one after the other.
    every = Pipeline(
        settings,
        gallery,
        source=str(args.source),
        detector=tracked.detector,
        embedder=tracked.embedder,
        embed_every_frame=True,
    )
    bus = _start_plugins(settings) if args.plugins else None
    try:
        summary, human = _bench_loop(args, tracked, every, bus)
    finally:
        plugins = _stop_plugins(bus) if bus is not None else None
    summary["gallery"] = gallery_info
    if plugins is not None:
        summary["plugins"] = plugins
        human.append(
            "plugins: "
            + (
                ", ".join(f"{name} {p['calls']} calls, {p['dropped']} dropped" for name, p in plugins.items())
                or "none found"
            )
        )
    _emit(args, summary, human)
    return _EXIT_OK


def _start_plugins(settings: Settings) -> Any:
    """The plugins as the app runs them: discovered, loaded with the user's settings, each on its thread."""
    from core.events import EventBus
    from core.plugins import discover_plugins, load_plugins

    plugins = load_plugins(discover_plugins(), settings.plugins)
    bus = EventBus(plugins, settings.plugins.queue_size, settings.plugins.max_failures)
    bus.start()
    return bus


def _stop_plugins(bus: Any) -> dict[str, dict[str, Any]]:
    # As in the app: queued events get 2 s to be delivered; a plugin still busy then is abandoned (its
    # daemon thread is left behind), so a hung plugin never holds the bench up for longer.
    abandoned = set(bus.stop(timeout=2.0))
    return {
        s.name: {
            "enabled": s.enabled,
            "state": str(s.state),
            "calls": s.calls,
            "dropped": s.dropped,
            "failures": s.failures,
            "abandoned": s.name in abandoned,
        }
        for s in bus.status()
    }


def _bench_loop(
    args: argparse.Namespace, tracked: Any, every: Any, bus: Any
) -> tuple[dict[str, Any], list[str]]:
    from core.capture import open_source

    stage_sum: Counter[str] = Counter()
    stage_every: Counter[str] = Counter()
    wall_tracked = wall_every = cpu_tracked = cpu_every = 0.0
    frames = faces = embeds = embeds_every = 0
    with open_source(args.source, loop=False) as source:
        for frame in source:
            if args.warmup and frame.index < args.warmup:
                warm = tracked.process(frame.image, frame.index, frame.timestamp)
                if bus is not None:
                    bus.publish_many(warm.events)
                every.process(frame.image, frame.index, frame.timestamp)
                continue
            t, c = time.perf_counter(), time.process_time()
            a = tracked.process(frame.image, frame.index, frame.timestamp, frame.decode_ms)
            if bus is not None:
                # Publishing is part of the tracked frame's cost, as in the app's worker.
                bus.publish_many(a.events)
            wall_tracked += time.perf_counter() - t + frame.decode_ms / 1000.0
            cpu_tracked += time.process_time() - c
            t, c = time.perf_counter(), time.process_time()
            b = every.process(frame.image, frame.index, frame.timestamp, frame.decode_ms)
            wall_every += time.perf_counter() - t + frame.decode_ms / 1000.0
            cpu_every += time.process_time() - c
            frames += 1
            faces += len(a.faces)
            embeds += sum(1 for f in a.faces if f.embedded)
            embeds_every += sum(1 for f in b.faces if f.embedded)
            for key, value in a.timings.as_dict().items():
                stage_sum[key] += value
            for key, value in b.timings.as_dict().items():
                stage_every[key] += value
            if args.frames and frames >= args.frames:
                break
    if bus is not None:
        bus.publish_many(tracked.flush_events())
    if frames == 0:
        raise CliError(f"{args.source} gave no frames to measure")
    match_ms = bench_match(tracked.embedder.dim, args.gallery_size) if args.gallery_size else None
    summary = {
        "frames": frames,
        "fps": round(frames / wall_tracked, 2),
        "fps_every_frame": round(frames / wall_every, 2),
        "stage_ms": {k: round(v / frames, 3) for k, v in stage_sum.items()},
        "stage_ms_every_frame": {k: round(v / frames, 3) for k, v in stage_every.items()},
        # CPU seconds of the whole process per frame (all threads), decoding excluded: less sensitive
        # than wall time to other programs running on the machine.
        "cpu_ms_per_frame": round(1000 * cpu_tracked / frames, 2),
        "cpu_ms_per_frame_every_frame": round(1000 * cpu_every / frames, 2),
        "faces_per_frame": round(faces / frames, 3),
        "embeds_per_frame": round(embeds / frames, 3),
        "embeds_per_frame_every_frame": round(embeds_every / frames, 3),
        f"match_ms_{_size_label(args.gallery_size)}": None if match_ms is None else round(match_ms, 3),
        "match_gallery_size": args.gallery_size,
        "detector": tracked.detector.model_id,
        "embedder": tracked.embedder.model_id,
        "cpu_count": os.cpu_count(),
        "opencv_threads": cv2.getNumThreads(),
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "torch_threads": _torch_threads(),
    }
    stages = ", ".join(f"{k} {v:.1f}" for k, v in summary["stage_ms"].items())
    human = [
        f"{summary['fps']} fps with tracking, {summary['fps_every_frame']} fps embedding every face of every "
        f"frame ({frames} frames, {summary['faces_per_frame']} faces per frame)",
        f"per frame (ms): {stages}",
        f"embeddings per frame: {summary['embeds_per_frame']} with tracking, "
        f"{summary['embeds_per_frame_every_frame']} without",
    ]
    if match_ms is not None:
        human.append(f"matching one face against {args.gallery_size} gallery photos: {match_ms:.2f} ms")
    return summary, human


def _torch_threads() -> int | None:
    """Torch's intra-op threads if a model loaded torch, else what the thread policy would give it."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return int(torch.get_num_threads())
    policy = current_policy()
    return policy.torch_threads if policy is not None else None


def _size_label(size: int) -> str:
    return f"{size // 1000}k" if size and size % 1000 == 0 else str(size)


# -------------------------------------------------------------------------------- trainer hooks


def _trainer_hook(function: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        # Imported by name at run time: the engine never imports the trainer statically (import-linter).
        try:
            module = importlib.import_module("trainer.cli")
        except ImportError as exc:
            raise CliError(f"the trainer is not available in this installation ({exc})") from exc
        entry = getattr(module, function, None)
        if entry is None:
            raise CliError(f"trainer.cli has no {function}()")
        code = entry(list(args.trainer_args))
        return int(code or 0)

    return run


# ----------------------------------------------------------------------------------------- parser


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument(
        "--settings", metavar="FILE", help="a settings JSON file (default: built-in defaults)"
    )


def _add_models(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--detector", metavar="ID", help="face detector: yunet (default), retinaface-mnet025")
    parser.add_argument(
        "--embedder",
        metavar="ID[:CHECKPOINT]",
        help="face embedder: sface (default), ghostfacenetv2[:file.pt]",
    )
    parser.add_argument("--device", metavar="DEV", help="cpu (default) or cuda:N for PyTorch models")


def _add_gallery(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument(
        "--gallery", metavar="DIR", required=required, help="gallery folder, one folder per person"
    )
    parser.add_argument(
        "--cache", metavar="FILE", help="embedding cache database (default: in the user cache)"
    )
    parser.add_argument(
        "--allow-largest", action="store_true", help="use the largest face of photos showing several faces"
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``ghostface``."""
    parser = argparse.ArgumentParser(
        prog="ghostface",
        description="Real-time face recognition: the engine of GhostFace Desktop, without the GUI.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser("run", help="recognise faces in a video, a camera or an image folder")
    run.add_argument("--source", required=True, help="video file, camera index (0, 1, ...) or image folder")
    _add_gallery(run, required=True)
    run.add_argument("--events", metavar="FILE.jsonl", help="write recognition events as JSON lines")
    run.add_argument("--output", metavar="FILE.mp4", help="write the video with boxes and names")
    run.add_argument(
        "--threshold",
        type=float,
        help="cosine similarity threshold (default: the embedder's own; 0.36 for SFace)",
    )
    run.add_argument("--margin", type=float, help="top-1/top-2 margin (default 0.05)")
    run.add_argument("--max-frames", type=int, default=0, metavar="N", help="stop after N frames")
    _add_models(run)
    _add_common(run)
    run.set_defaults(func=_cmd_run)

    enroll = sub.add_parser("enroll", help="add photos of a person to a gallery")
    _add_gallery(enroll, required=True)
    enroll.add_argument("--person", required=True, help="the person's name (their folder name)")
    enroll.add_argument("photos", nargs="+", metavar="PHOTO", help="photo files")
    _add_models(enroll)
    _add_common(enroll)
    enroll.set_defaults(func=_cmd_enroll)

    ev = sub.add_parser("eval", help="measure accuracy")
    ev_sub = ev.add_subparsers(dest="eval_command", metavar="PROTOCOL", required=True)
    lfw = ev_sub.add_parser("lfw", help="LFW pairs, 10-fold accuracy and TAR@FAR")
    lfw.add_argument("--images", required=True, metavar="DIR", help="LFW folder (<Name>/<Name>_0001.jpg)")
    lfw.add_argument("--pairs", required=True, metavar="FILE", help="pairs.txt")
    lfw.add_argument("--folds", type=int, metavar="N", help="number of folds (default: from the pairs file)")
    lfw.add_argument("--limit-pairs", type=int, metavar="N", help="score about N pairs only (smoke test)")
    _add_models(lfw)
    _add_common(lfw)
    lfw.set_defaults(func=_cmd_eval_lfw)
    ident = ev_sub.add_parser("ident", help="open-set identification: rank-1, DIR@FPIR")
    ident.add_argument("--gallery", required=True, metavar="DIR", help="one folder of photos per person")
    ident.add_argument("--probes", required=True, metavar="DIR", help="probe photos as <person>/<photo>")
    ident.add_argument("--distractors", metavar="DIR", help="photos of people not in the gallery")
    _add_models(ident)
    _add_common(ident)
    ident.set_defaults(func=_cmd_eval_ident)

    bench = sub.add_parser("bench", help="frames per second and time per stage")
    bench.add_argument("--source", required=True, help="video file (or image folder)")
    bench.add_argument("--frames", type=int, default=0, metavar="N", help="measure at most N frames")
    bench.add_argument("--warmup", type=int, default=5, metavar="N", help="frames run before measuring")
    bench.add_argument(
        "--plugins",
        action="store_true",
        help="run the plugins as the app does (built-ins, the plugins folder, installed ones) and publish "
        "every event to them; the JSON reports each plugin's calls and dropped events",
    )
    bench.add_argument(
        "--gallery-size",
        type=int,
        default=100_000,
        metavar="M",
        help="gallery size for the matching benchmark",
    )
    _add_gallery(bench, required=False)
    _add_models(bench)
    _add_common(bench)
    bench.set_defaults(func=_cmd_bench)

    for name, text in (
        ("align", "prepare a training set of aligned 112x112 crops (the trainer's options follow)"),
        ("train", "train or fine-tune GhostFaceNetV2 from a JSON config (the trainer's options follow)"),
    ):
        function = _TRAINER_COMMANDS[name]
        # Listed here for --help; main() hands everything after the word to the trainer untouched.
        hook = sub.add_parser(name, help=text, add_help=False)
        hook.add_argument("trainer_args", nargs=argparse.REMAINDER)
        hook.set_defaults(func=_trainer_hook(function))
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
    if argv and argv[0] in _TRAINER_COMMANDS:
        # The trainer parses its own options (argparse.REMAINDER would stop at the first "--option").
        args = argparse.Namespace(
            func=_trainer_hook(_TRAINER_COMMANDS[argv[0]]), trainer_args=argv[1:], verbose=0
        )
    else:
        args = parser.parse_args(argv)
    _configure_logging(getattr(args, "verbose", 0))
    try:
        # ``train`` sets torch's threads from its own config; every other command runs the engine.
        configure_threads(manage_torch=not (argv and argv[0] == "train"))
        return int(args.func(args))
    except GhostFaceError as exc:
        _say(f"error: {exc}", error=True)
        return _EXIT_ERROR
    except KeyboardInterrupt:
        _say("interrupted", error=True)
        return 130
    except (OSError, ValueError) as exc:
        if getattr(args, "verbose", 0):
            log.exception("failed")
        _say(f"error: {exc}", error=True)
        return _EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
