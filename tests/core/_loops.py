"""The real Hamilton clip looped through the real pipeline, for the tests of looping video."""

from __future__ import annotations

from pathlib import Path

from core.capture import open_source
from core.gallery import Gallery
from core.pipeline import Pipeline
from core.settings import Settings
from core.types import FrameResult


def loop_clip(
    clip: Path, gallery_dir: Path, cache: Path, *, passes: int, stride: int, end_last_pass: bool = False
) -> tuple[Pipeline, list[FrameResult]]:
    """Run ``passes`` loops of ``clip`` through a pipeline that knows the gallery's people.

    Args:
        clip: the video, opened to loop (every pass is a new stream).
        gallery_dir: a gallery of three usable photos (the people of the ``hamilton_gallery`` fixture).
        cache: the gallery's SQLite cache file.
        passes: how many loops.
        stride: every ``stride``-th frame of a pass is processed, as a busy live view would (latest
            frame wins); it also divides the test's time.
        end_last_pass: process one more frame as the first of a new stream, which ends the last pass.

    Returns:
        The pipeline (its state after the loops) and every frame's result, in order.
    """
    pipe = Pipeline(Settings(), source=str(clip))
    gallery = Gallery(gallery_dir, pipe.embedder, pipe.detector, cache_path=cache)
    assert gallery.sync().usable == 3
    pipe.set_gallery(gallery)
    results = []
    with open_source(clip, loop=True) as source:
        for frame in source:
            if frame.stream_id >= passes:
                break
            if frame.index % stride == 0:
                results.append(
                    pipe.process(
                        frame.image, frame.index, frame.timestamp, frame.decode_ms, stream_id=frame.stream_id
                    )
                )
    if end_last_pass:
        results.append(pipe.process(results[0].frame, 0, 0.0, stream_id=passes))
    gallery.close()
    return pipe, results
