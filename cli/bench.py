"""``ghostface bench``: frames per second and time per stage, and the matching cost of a large gallery."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter
from typing import Any

import cv2
import numpy as np

from cli._common import (
    EXIT_OK,
    CliError,
    add_common,
    add_gallery,
    add_models,
    emit,
    open_gallery,
    settings_from_args,
    sync_gallery,
)
from cli.plugins import plugins_summary, user_settings
from core.capture import open_source
from core.matching import Matcher
from core.pipeline import Pipeline
from core.runtime import current_policy
from core.settings import Settings


def register(sub: Any) -> None:
    """Add ``bench`` and its options to the subcommand parsers ``sub``."""
    parser = sub.add_parser("bench", help="frames per second and time per stage")
    parser.add_argument("--source", required=True, help="video file (or image folder)")
    parser.add_argument("--frames", type=int, default=0, metavar="N", help="measure at most N frames")
    parser.add_argument("--warmup", type=int, default=5, metavar="N", help="frames run before measuring")
    parser.add_argument(
        "--plugins",
        action="store_true",
        help="run the plugins as the app does (built-ins, the plugins folder, installed ones) and publish "
        "every event to them; the JSON reports each plugin's calls and dropped events",
    )
    parser.add_argument(
        "--gallery-size",
        type=int,
        default=100_000,
        metavar="M",
        help="gallery size for the matching benchmark",
    )
    add_gallery(parser, required=False)
    add_models(parser)
    add_common(parser)
    parser.set_defaults(func=bench)


def bench_match(dim: int, gallery_size: int, *, people: int | None = None, repeats: int = 200) -> float:
    """Median milliseconds to match one face against a random gallery of ``gallery_size`` photos."""
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


def bench(args: argparse.Namespace) -> int:
    """Frames per second and time per stage, with tracking and embedding every face of every frame."""
    settings = settings_from_args(args)
    tracked = Pipeline(settings, source=str(args.source))
    gallery_info = None
    gallery = None
    if args.gallery or getattr(args, "store", None):
        gallery = open_gallery(args, settings, tracked.detector, tracked.embedder)
        gallery_info, _ = sync_gallery(gallery)
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
    if args.plugins and not args.settings:
        settings = settings.replace(plugins=user_settings(args).plugins)
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
                ", ".join(
                    f"{name} {p['state']}, {p['calls']} calls, {p['dropped']} dropped"
                    for name, p in plugins.items()
                )
                or "none found"
            )
        )
    emit(args, summary, human)
    return EXIT_OK


def _start_plugins(settings: Settings) -> Any:
    """The plugins as the app runs them: the same assembly (discovery, isolation, history)."""
    from core.events import create_event_bus

    return create_event_bus(settings)


def _stop_plugins(bus: Any) -> dict[str, dict[str, Any]]:
    from core.events import plugin_report

    # As in the app: queued events get the drain time (plugins.drain_s); what is left is counted as
    # dropped, and a plugin still busy after that is abandoned, so a hung one never holds the bench up.
    bus.stop()
    return plugins_summary(plugin_report(bus))


def _bench_loop(
    args: argparse.Namespace, tracked: Any, every: Any, bus: Any
) -> tuple[dict[str, Any], list[str]]:
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
        # The embedder's own cost, comparable across models: every face of every frame, batched per frame.
        "embed_ms_per_face": round(stage_every["embed"] / embeds_every, 3) if embeds_every else None,
        f"match_ms_{_size_label(args.gallery_size)}": None if match_ms is None else round(match_ms, 3),
        "match_gallery_size": args.gallery_size,
        "detector": tracked.detector.model_id,
        "embedder": tracked.embedder.model_id,
        "embedder_runtime": tracked.embedder.runtime,
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
    if summary["embed_ms_per_face"] is not None:
        human.append(
            f"embedding one face: {summary['embed_ms_per_face']:.2f} ms ({tracked.embedder.model_id} through "
            f"{tracked.embedder.runtime})"
        )
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
