"""A looping video through the real pipeline: every pass is a new stream, and its visits end with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.capture import open_source
from core.gallery import Gallery
from core.pipeline import Pipeline
from core.settings import Settings
from core.types import EventKind, FrameResult, RecognitionEvent
from tests.core._loops import loop_clip

# Every second frame of each pass, as a busy live view would (latest frame wins); halves the test's time.
STRIDE = 2


def run_passes(clip: Path, gallery_dir: Path, tmp_path: Path, passes: int) -> list[FrameResult]:
    """The results of ``passes`` loops of ``clip`` through a pipeline that knows the gallery's people."""
    _pipe, results = loop_clip(
        clip, gallery_dir, tmp_path / "cache.sqlite3", passes=passes, stride=STRIDE, end_last_pass=True
    )
    return results


def _events(results: list[FrameResult]) -> list[tuple[int, RecognitionEvent]]:
    """Every event in order, with the stream of the result that carried it."""
    return [(r.stream_id, e) for r in results for e in r.events]


def test_a_looping_video_ends_every_visit_and_restarts_frames_time_and_tracks_each_pass(
    hamilton_clip: Path, hamilton_gallery: Path, tmp_path: Path
) -> None:
    results = run_passes(hamilton_clip, hamilton_gallery, tmp_path, passes=2)
    events = _events(results)
    recognized = [e for s, e in events if s == 0 and e.kind is EventKind.RECOGNIZED]
    assert {e.person for e in recognized} >= {"Lin-Manuel Miranda"}
    first_visits = {e.visit_id for s, e in events if s == 0}
    # The first event of pass 2's own visits; every visit of pass 1 has ended before it.
    first_new = next(i for i, (s, e) in enumerate(events) if s == 1 and e.visit_id not in first_visits)
    for event in recognized:
        lefts = [
            i for i, (_s, e) in enumerate(events) if e.kind is EventKind.LEFT and e.visit_id == event.visit_id
        ]
        assert len(lefts) == 1, f"{event.person}'s visit of pass 1 ended {len(lefts)} times"
        assert lefts[0] < first_new
        left = events[lefts[0]][1]
        # Dated by the last sighting in pass 1, with the visit's whole duration.
        assert left.person == event.person and left.stream_time >= event.stream_time
        assert left.duration_s == pytest.approx(left.stream_time - (event.stream_time - event.duration_s))
    # Pass 2 recognizes the same people again, in new visits (a new stream: cooldowns start afresh).
    recognized_2 = [e for s, e in events if s == 1 and e.kind is EventKind.RECOGNIZED]
    assert {e.person for e in recognized_2} == {e.person for e in recognized}
    assert not {e.visit_id for e in recognized_2} & first_visits

    first = [r for r in results if r.stream_id == 0]
    second = [r for r in results if r.stream_id == 1]
    assert (second[0].frame_index, second[0].timestamp) == (0, 0.0)
    assert [r.frame_index for r in second] == [r.frame_index for r in first]
    assert [r.timestamp for r in second] == [r.timestamp for r in first]
    # The tracker starts again: no face of pass 2 continues a track of pass 1.
    tracks_1 = {f.track_id for r in first for f in r.faces}
    tracks_2 = {f.track_id for r in second for f in r.faces}
    assert tracks_1 and tracks_2 and not tracks_1 & tracks_2
    # Pass 2's own events carry pass 2's frame index and stream time.
    own = [e for s, e in events if s == 1 and e.visit_id not in first_visits]
    assert all(e.frame_index <= second[-1].frame_index and e.stream_time <= second[-1].timestamp for e in own)


def test_a_new_stream_id_ends_the_stream_even_without_a_cut_or_time_going_back(
    hamilton_clip: Path, hamilton_gallery: Path, tmp_path: Path
) -> None:
    # A consumer may miss a pass's first frames (latest frame wins): the id alone says "new stream".
    pipe = Pipeline(Settings(), source=str(hamilton_clip))
    gallery = Gallery(hamilton_gallery, pipe.embedder, pipe.detector, cache_path=tmp_path / "cache.sqlite3")
    gallery.sync()
    pipe.set_gallery(gallery)
    with open_source(hamilton_clip) as source:
        frame = next(iter(source))
    first = [pipe.process(frame.image, i, i / 30) for i in range(6)]
    visits = {e.visit_id for r in first for e in r.events if e.kind is EventKind.RECOGNIZED}
    assert visits
    after = pipe.process(frame.image, 7, 7 / 30, stream_id=1)
    assert {e.visit_id for e in after.events if e.kind is EventKind.LEFT} == visits
    assert after.stream_id == 1
    assert not {f.track_id for f in after.faces} & {f.track_id for f in first[-1].faces}
    gallery.close()
