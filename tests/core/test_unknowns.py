"""Unknown faces without a flood, and why a face is Unknown: the real clip, looped, through the real pipeline."""

from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from core.events import EventEmitter
from core.matching import Matcher
from core.pipeline import Pipeline
from core.quality import face_sharpness
from core.settings import EventSettings
from core.types import EventKind, FrameResult, HeldBack
from core.unknowns import UnknownPeople
from tests.core._loops import loop_clip

PASSES = 3
STRIDE = 3  # every third frame, as a loaded live view would see it (latest frame wins)
PEOPLE = {"Barack Obama", "Lin-Manuel Miranda"}


@pytest.fixture(scope="module")
def looped(
    hamilton_clip: Path, demo_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Pipeline, list[FrameResult]]:
    """The clip three times over, through a pipeline whose gallery holds Obama and Lin-Manuel Miranda."""
    tmp = tmp_path_factory.mktemp("unknowns")
    root = tmp / "gallery"  # the people of the ``hamilton_gallery`` fixture (function-scoped)
    for person, photos in {
        "Barack Obama": ["obama.jpg", "obama2.jpg"],
        "Lin-Manuel Miranda": ["lin-manuel-miranda.png"],
    }.items():
        (root / person).mkdir(parents=True)
        for photo in photos:
            shutil.copy(demo_dir / photo, root / person / photo)
    return loop_clip(hamilton_clip, root, tmp / "cache.sqlite3", passes=PASSES, stride=STRIDE)


def test_an_unknown_who_comes_back_keeps_their_number_across_tracks_and_loops(
    looped: tuple[Pipeline, list[FrameResult]],
) -> None:
    pipe, results = looped
    numbers: dict[int, set[int]] = defaultdict(set)
    tracks: dict[int, set[int]] = defaultdict(set)
    for r in results:
        for face in r.faces:
            if face.person is None and face.unknown_id:
                numbers[r.stream_id].add(face.unknown_id)
                tracks[r.stream_id].add(face.track_id)
    assert set(numbers) == set(range(PASSES))
    # Within a pass, several tracks of one stranger (turning away, shot changes) are one unknown person.
    assert len(numbers[0]) < len(tracks[0])
    # Every later pass sees the same strangers again under the same numbers: no "Unknown #243".
    for later in range(1, PASSES):
        assert numbers[later] <= numbers[0], (
            f"pass {later} numbered new unknowns {numbers[later] - numbers[0]}"
        )
    assert len(pipe.unknowns) == len(numbers[0])
    # One unknown event per unknown person at most per pass, however many tracks they had.
    for stream in range(PASSES):
        unknown = [
            e for r in results if r.stream_id == stream for e in r.events if e.kind is EventKind.UNKNOWN
        ]
        assert 0 < len(unknown) <= len(numbers[0])


def test_an_unknown_event_needs_a_face_large_and_sharp_enough(
    looped: tuple[Pipeline, list[FrameResult]],
) -> None:
    _pipe, results = looped
    defaults = EventSettings()
    fired = [(r, e) for r in results for e in r.events if e.kind is EventKind.UNKNOWN]
    assert fired
    for result, event in fired:
        x1, y1, x2, y2 = event.box
        assert min(x2 - x1, y2 - y1) >= defaults.unknown_min_face_px
        assert face_sharpness(result.frame, np.array(event.box)) >= defaults.unknown_min_sharpness
    # The clip's unknown tracks that are dark, blurred false detections never fire.
    dark = [
        f
        for r in results
        for f in r.faces
        if f.person is None and face_sharpness(r.frame, f.detection.box) < defaults.unknown_min_sharpness
    ]
    assert dark and not {f.track_id for f in dark} & {e.track_id for _r, e in fired}


def test_no_unknown_event_below_the_minimum_face_size(looped: tuple[Pipeline, list[FrameResult]]) -> None:
    _pipe, results = looped
    first = [r for r in results if r.stream_id == 0]

    def unknown_events(settings: EventSettings) -> int:
        emitter = EventEmitter(settings, "clip")
        return sum(
            e.kind is EventKind.UNKNOWN
            for r in first
            for e in emitter.update(r.faces, r.frame, r.frame_index, r.timestamp)
        )

    assert unknown_events(EventSettings()) > 0
    assert unknown_events(EventSettings(unknown_min_face_px=400)) == 0
    assert unknown_events(EventSettings(unknown_min_sharpness=5000.0)) == 0


def test_an_unknown_face_says_who_came_closest_and_what_held_them_back(
    looped: tuple[Pipeline, list[FrameResult]],
) -> None:
    pipe, results = looped
    unknown = [f for r in results for f in r.faces if f.person is None and f.match.similarity > -1.0]
    assert unknown and all(f.match.reason is not None for f in unknown)
    rules = {f.match.reason.rule for f in unknown if f.match.reason is not None}
    assert {HeldBack.THRESHOLD, HeldBack.VOTES} <= rules
    threshold = pipe.matcher.threshold
    for face in unknown:
        reason = face.match.reason
        assert reason is not None and reason.candidate in PEOPLE
        assert reason.similarity == pytest.approx(face.similarity)
        if reason.rule is HeldBack.THRESHOLD:
            assert reason.similarity < threshold and reason.threshold == threshold
            assert reason.describe() == (
                f"Best candidate: {reason.candidate} ({reason.similarity:.2f}), below the similarity "
                f"threshold {threshold:.2f}."
            )
        elif reason.rule is HeldBack.VOTES:
            # A fresh decision named the candidate, but the track's vote has not confirmed it yet.
            assert reason.similarity >= threshold and reason.votes < reason.votes_needed
            assert "not yet confirmed" in reason.describe()


def test_margin_and_an_empty_gallery_are_reasons_too(looped: tuple[Pipeline, list[FrameResult]]) -> None:
    pipe, _results = looped
    snapshot = pipe.gallery.snapshot() if pipe.gallery is not None else None
    assert snapshot is not None
    obama = snapshot.matrix[[i for i, p in enumerate(snapshot.labels) if p == "Barack Obama"][0]]
    # Obama's own photo is far above the threshold, but a margin of 0.99 cannot be beaten.
    strict = Matcher(threshold=pipe.matcher.threshold, margin=0.99)
    strict.set_gallery(snapshot.matrix, snapshot.labels)
    (match,) = strict.match(obama[None, :])
    assert match.person is None and match.reason is not None
    assert (match.reason.rule, match.reason.candidate, match.reason.second_person) == (
        HeldBack.MARGIN,
        "Barack Obama",
        "Lin-Manuel Miranda",
    )
    assert "margin 0.99 is not reached" in match.reason.describe()
    (lonely,) = Matcher(0.3, 0.05).match(obama[None, :])
    assert lonely.reason is not None and lonely.reason.rule is HeldBack.NO_GALLERY


def test_the_unknown_list_is_bounded_and_forgets_the_least_recently_seen() -> None:
    rng = np.random.default_rng(0)
    people = UnknownPeople(threshold=0.5, capacity=5)
    faces = rng.normal(size=(8, 128)).astype(np.float32)  # random directions: cosine ~0 between them
    numbers = [people.identify(f) for f in faces]
    assert numbers == list(range(1, 9)) and len(people) == 5 and people.numbers == (4, 5, 6, 7, 8)
    # A noisy view of a remembered face is that person; one of a forgotten face is a new number.
    assert people.identify(faces[5] + 0.1 * rng.normal(size=128).astype(np.float32)) == 6
    assert people.identify(faces[0]) == 9
    # Two faces in view at once are never one person, however alike.
    assert people.identify(faces[6], exclude={7}) == 10


def test_a_numbered_unknown_on_a_new_track_is_not_reported_again_within_the_cooldown(demo_dir: Path) -> None:
    import cv2

    from core.types import Detection, Face, Match

    frame = cv2.imread(str(demo_dir / "obama-480p.jpg"))  # a real, sharp face inside the box below
    assert frame is not None
    box = np.array([250.0, 60.0, 390.0, 240.0], np.float32)

    def seen(track: int, number: int, frames: int = 90) -> list[list[Face]]:
        face = Face(
            Detection(box, 0.95, np.zeros((5, 2), np.float32)), track, Match(None, 0.1), True, 10, number
        )
        return [[face] for _ in range(frames)]

    def unknown_events(timeline: list[list[Face]]) -> list[int]:
        emitter = EventEmitter(EventSettings(unknown_after_s=1.0, cooldown_s=60.0), "cam")
        events = [e for i, faces in enumerate(timeline) for e in emitter.update(faces, frame, i, i / 30.0)]
        return [e.track_id for e in events if e.kind is EventKind.UNKNOWN]

    # Unknown #7 turns away (a new track each time) three times: one person, one event.
    assert unknown_events(seen(1, 7) + [[]] * 30 + seen(2, 7) + [[]] * 30 + seen(3, 7)) == [1]
    # Two different unknown people, or tracks not numbered, are reported each.
    assert unknown_events(seen(1, 7) + seen(2, 8)) == [1, 2]
    assert unknown_events(seen(1, 0) + seen(2, 0)) == [1, 2]
