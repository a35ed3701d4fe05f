"""``ghostface run``: recognize a video, a camera or an image folder against a gallery."""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

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
    store_settings,
    store_url,
    sync_gallery,
)
from cli.plugins import plugin_lines, plugins_summary, user_settings
from core.capture import IMAGE_EXTENSIONS, open_source
from core.pipeline import Pipeline
from core.settings import Settings
from core.types import Face, RecognitionEvent

log = logging.getLogger("ghostface")


def register(sub: Any) -> None:
    """Add ``run`` and its options to the subcommand parsers ``sub``."""
    parser = sub.add_parser("run", help="recognize faces in a video, a camera or an image folder")
    parser.add_argument(
        "--source", required=True, help="video file, camera index (0, 1, ...) or image folder"
    )
    add_gallery(parser, required=True)
    parser.add_argument("--events", metavar="FILE.jsonl", help="write recognition events as JSON lines")
    parser.add_argument("--output", metavar="FILE.mp4", help="write the video with boxes and names")
    parser.add_argument(
        "--threshold",
        type=float,
        help="cosine similarity threshold (default: the embedder's own; 0.36 for SFace)",
    )
    parser.add_argument("--margin", type=float, help="top-1/top-2 margin (default 0.05)")
    parser.add_argument("--max-frames", type=int, default=0, metavar="N", help="stop after N frames")
    parser.add_argument(
        "--loop",
        action="store_true",
        help="start a video again at its end (stop with Ctrl-C or --max-frames)",
    )
    parser.add_argument(
        "--plugins",
        action="store_true",
        help="fire the plugins as the app does (built-ins, the plugins folder, installed ones, with the "
        "user's plugin settings) and record the history; --json lists every plugin with its state",
    )
    parser.add_argument(
        "--source-label", metavar="TEXT", help='a name for the source in every event ("Front door")'
    )
    add_models(parser)
    add_common(parser)
    parser.set_defaults(func=run)


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
    return path.is_file() and path.suffix.lower() not in IMAGE_EXTENSIONS


def _open_events(path: Path) -> TextIO:
    """The events file, open for writing; the error names it (not only the folder that failed)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "w", encoding="utf-8")  # noqa: SIM115 - the caller closes it
    except OSError as exc:
        raise CliError(f"cannot write the events file {path}: {exc.strerror or exc}") from exc


class _Outputs:
    """Where a run's results go: the counted events, the events file, the annotated video."""

    def __init__(self, args: argparse.Namespace, fps: float, bus: Any = None, history: Any = None) -> None:
        self.bus = bus
        # The shared history when no bus records it (no --plugins): the events still reach the server.
        self.history = history
        self.kinds: Counter[str] = Counter()
        self.recognised: Counter[str] = Counter()
        self._video_path: str | None = args.output
        self._fps = fps
        self._writer: cv2.VideoWriter | None = None
        self._events_file = None
        if args.events:
            self._events_file = _open_events(Path(args.events))

    def events(self, events: Sequence[RecognitionEvent]) -> None:
        """Count the events, hand them to the plugins, and write them as JSON lines when asked to."""
        if self.bus is not None:
            self.bus.publish_many(events)
        elif self.history is not None and events:
            self.history.record(events)
        for event in events:
            self.kinds[str(event.kind)] += 1
            if event.person and str(event.kind) == "recognized":
                self.recognised[event.person] += 1
            if self._events_file is not None:
                self._events_file.write(json.dumps(event.to_dict(), ensure_ascii=False) + "\n")
                self._events_file.flush()

    def frame(self, image: np.ndarray, faces: Sequence[Face]) -> None:
        """Write the annotated frame when a video was asked for (opened at the first frame's size)."""
        if not self._video_path:
            return
        if self._writer is None:
            h, w = image.shape[:2]
            Path(self._video_path).parent.mkdir(parents=True, exist_ok=True)
            fourcc = cv2.VideoWriter.fourcc(*"mp4v")
            self._writer = cv2.VideoWriter(str(self._video_path), fourcc, self._fps, (w, h))
            if not self._writer.isOpened():
                raise CliError(f"cannot write the video {self._video_path} (use a .mp4 or .avi name)")
        self._writer.write(_annotate(image, faces))

    def close(self) -> None:
        """Finish the video and the events file."""
        if self._writer is not None:
            self._writer.release()
        if self._events_file is not None:
            self._events_file.close()


def _run_settings(args: argparse.Namespace) -> Settings:
    settings = store_settings(args, settings_from_args(args))
    if args.plugins and not args.settings:
        # The station's own plugin switches and settings, as the app would use them.
        settings = settings.replace(plugins=user_settings(args).plugins)
    if args.source_label is not None:
        settings = settings.replace(events={"source_label": args.source_label})
    if Path(args.source).expanduser().exists() and not _is_video(Path(args.source)):
        # Each image of a folder is its own scene: one decision names a face, and an unknown face is
        # reported at once (there is no track to vote over or wait on).
        settings = settings.replace(tracking={"confirm_votes": 1}, events={"unknown_after_s": 0.0})
    return settings


def run(args: argparse.Namespace) -> int:
    """Recognize every frame of ``--source`` against ``--gallery``; events and video as asked."""
    settings = _run_settings(args)
    source = open_source(args.source, loop=bool(getattr(args, "loop", False)))
    outputs: _Outputs | None = None
    frames, interrupted, start = 0, False, time.perf_counter()
    bus = None
    history: Any = None
    gallery: Any = None
    plugin_rows: list[dict[str, Any]] | None = None
    try:
        pipeline = Pipeline(settings, source=str(args.source))
        gallery = open_gallery(args, settings, pipeline.detector, pipeline.embedder)
        gallery_info, _ = sync_gallery(gallery)
        pipeline.set_gallery(gallery)
        if gallery_info["usable"] == 0:
            log.warning(
                "the gallery %s has no usable photo: every face will be Unknown", args.gallery or gallery.root
            )
        if store_url(args):
            from core.engine import open_shared_history

            history = open_shared_history(settings, conninfo=store_url(args))
        if args.plugins:
            from core.events import create_event_bus

            # The one assembly the app uses too: same discovery, isolation and history recorder.
            bus = create_event_bus(settings, history=history if history is not None else True)
        outputs = _Outputs(args, source.fps or 25.0, bus, None if bus is not None else history)
        try:
            for frame in source:
                result = pipeline.process(frame.image, frame.index, frame.timestamp, frame.decode_ms)
                frames += 1
                outputs.events(result.events)
                outputs.frame(frame.image, result.faces)
                if args.max_frames and frames >= args.max_frames:
                    break
        except KeyboardInterrupt:
            interrupted = True
        outputs.events(pipeline.flush_events())
    finally:
        source.close()
        if outputs is not None:
            outputs.close()
        if bus is not None:
            from core.events import plugin_report

            bus.stop()  # drains within plugins.drain_s; what is left counts as dropped
            plugin_rows = plugin_report(bus)
        store_info = _close_store(history, gallery)
    seconds = time.perf_counter() - start
    kinds, recognised = outputs.kinds, outputs.recognised
    summary = {
        "frames": frames,
        "seconds": round(seconds, 3),
        "fps": round(frames / seconds, 2) if seconds > 0 else None,
        "events": dict(kinds),
        "recognized": sorted(recognised),
        "gallery": gallery_info,
        "events_file": args.events,
        **({"plugins": plugins_summary(plugin_rows)} if plugin_rows is not None else {}),
        "output": args.output,
        "interrupted": interrupted,
        **({"store": store_info} if store_info else {}),
    }
    human = [
        f"{frames} frames in {seconds:.1f} s ({summary['fps']} fps)",
        f"recognized: {', '.join(sorted(recognised)) or 'nobody'}",
        f"events: {', '.join(f'{k} {v}' for k, v in sorted(kinds.items())) or 'none'}",
    ]
    if plugin_rows is not None:
        human += ["plugins:", *plugin_lines(plugin_rows)]
    if store_info:
        human.append(
            f"shared store {store_info['server']}, station {store_info['station']}: "
            f"{store_info['delivered']} events delivered, {store_info['waiting']} waiting in the outbox"
        )
    if args.events:
        human.append(f"events written to {args.events}")
    if args.output:
        human.append(f"annotated video written to {args.output}")
    emit(args, summary, human)
    return EXIT_OK


def _close_store(history: Any, gallery: Any) -> dict[str, Any] | None:
    """Deliver what the outbox holds, close the shared store, and say how it went (None: embedded)."""
    if gallery is not None and hasattr(gallery, "conninfo"):
        gallery.close()
    if history is None:
        return None
    history.close()
    return {
        "server": history.where,
        "station": history.station,
        "delivered": history.delivered,
        "waiting": history.left_in_outbox,
    }
