"""Tracking: stable ids across frames, an identity vote with hysteresis, and a cheap re-embed policy."""

from __future__ import annotations

import numpy as np
import pytest

from core.settings import TrackingSettings
from core.tracking import Tracker, iou_matrix
from core.types import Detection, Match


def _det(x: float, y: float, size: float = 60.0) -> Detection:
    box = np.array([x, y, x + size, y + size], dtype=np.float32)
    landmarks = np.tile(np.array([[x + size / 2, y + size / 2]], dtype=np.float32), (5, 1))
    return Detection(box=box, score=0.9, landmarks=landmarks)


def _step(tracker: Tracker, frame: int, detections: list[Detection], decisions: list[str | None]) -> list:
    """One frame: decisions[i] is what the matcher would say about detection i if it were embedded."""
    plan = tracker.assign(detections, frame)
    matches = {i: Match(decisions[i], 0.7 if decisions[i] else 0.1) for i in plan.to_embed}
    return tracker.update(plan, detections, matches)


def test_iou_matrix_values() -> None:
    a = np.array([[0, 0, 10, 10]], dtype=np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], dtype=np.float32)
    np.testing.assert_allclose(iou_matrix(a, b), [[1.0, 50 / 150, 0.0]], rtol=1e-6)
    assert iou_matrix(a, np.zeros((0, 4))).shape == (1, 0)


def test_track_ids_follow_moving_faces_and_new_faces_get_new_ids() -> None:
    tracker = Tracker(TrackingSettings())
    ids = []
    for frame in range(10):
        # Two faces walking in opposite directions, a few pixels per frame; detector order shuffles.
        dets = [_det(100 + 4 * frame, 100), _det(400 - 4 * frame, 120)]
        if frame % 2:
            dets.reverse()
        faces = _step(tracker, frame, dets, ["A", "B"] if frame % 2 == 0 else ["B", "A"])
        ids.append({round(float(f.detection.box[0])): f.track_id for f in faces})
    first = ids[0]
    assert len(set(first.values())) == 2
    left_id, right_id = first[100], first[400]
    for frame, mapping in enumerate(ids):
        assert mapping[100 + 4 * frame] == left_id
        assert mapping[400 - 4 * frame] == right_id
    faces = _step(tracker, 10, [_det(140, 100), _det(360, 120), _det(250, 300)], ["A", "B", None])
    assert faces[2].track_id not in {left_id, right_id}


def test_a_track_survives_missed_frames_then_dies() -> None:
    tracker = Tracker(TrackingSettings(max_missed_frames=3))
    first = _step(tracker, 0, [_det(100, 100)], ["A"])[0].track_id
    for frame in range(1, 4):  # three frames without the face: still the same track afterwards
        _step(tracker, frame, [], [])
    assert _step(tracker, 4, [_det(102, 100)], ["A"])[0].track_id == first
    for frame in range(5, 9):  # four missed frames: the track is gone
        _step(tracker, frame, [], [])
    assert tracker.track_count == 0
    assert _step(tracker, 9, [_det(102, 100)], ["A"])[0].track_id != first


def test_a_name_is_shown_only_after_enough_agreeing_votes() -> None:
    tracker = Tracker(TrackingSettings(confirm_votes=3, vote_window=7))
    shown = [_step(tracker, f, [_det(100, 100)], ["Alice"])[0].person for f in range(4)]
    assert shown == [None, None, "Alice", "Alice"]


def test_one_odd_decision_does_not_flip_a_confirmed_name() -> None:
    settings = TrackingSettings(confirm_votes=2, vote_window=7, reembed_interval=1)
    tracker = Tracker(settings)
    decisions = ["Alice"] * 5 + ["Bob"] + ["Alice"] * 2 + [None] + ["Alice"]
    shown = [_step(tracker, f, [_det(100, 100)], [d])[0].person for f, d in enumerate(decisions)]
    assert shown[1:] == ["Alice"] * (len(decisions) - 1)


def test_a_name_changes_when_another_clearly_wins() -> None:
    settings = TrackingSettings(confirm_votes=2, vote_window=5, reembed_interval=1)
    tracker = Tracker(settings)
    decisions = ["Alice"] * 5 + ["Bob"] * 5
    shown = [_step(tracker, f, [_det(100, 100)], [d])[0].person for f, d in enumerate(decisions)]
    # Bob needs more votes than Alice inside the window: the 3rd Bob vote (window A A B B B) wins.
    assert shown[5:] == ["Alice", "Alice", "Bob", "Bob", "Bob"]


def test_a_settled_track_is_embedded_only_every_interval() -> None:
    tracker = Tracker(TrackingSettings(confirm_votes=2, reembed_interval=5))
    embedded = [f.embedded for frame in range(14) for f in _step(tracker, frame, [_det(100, 100)], ["Alice"])]
    # Frames 0 and 1 confirm the name; then one embedding every 5 frames.
    assert embedded == [True, True] + [False] * 4 + [True] + [False] * 4 + [True] + [False] * 2
    faces = _step(tracker, 14, [_det(100, 100)], ["Alice"])
    assert faces[0].person == "Alice" and faces[0].similarity == pytest.approx(0.7)


def test_a_settled_stranger_is_embedded_half_as_often() -> None:
    tracker = Tracker(TrackingSettings(confirm_votes=2, reembed_interval=3))
    embedded = [f.embedded for frame in range(10) for f in _step(tracker, frame, [_det(100, 100)], [None])]
    assert embedded == [True, True] + [False] * 5 + [True] + [False] * 2


def test_a_disagreeing_decision_makes_the_track_embedded_every_frame_until_settled() -> None:
    tracker = Tracker(TrackingSettings(confirm_votes=2, vote_window=5, reembed_interval=10))
    for frame in range(3):
        _step(tracker, frame, [_det(100, 100)], ["Alice"])
    flags = []
    for frame in range(3, 20):
        decision = "Bob" if frame >= 11 else "Alice"
        faces = _step(tracker, frame, [_det(100, 100)], [decision])
        flags.append((faces[0].embedded, faces[0].person))
    # Embedded at frames 0 and 1 (name confirmed), then next at 1 + 10 = 11, which is the first to say
    # Bob: from then on every frame is embedded until Bob has won the vote (window A A B B B at 13).
    assert [e for e, _ in flags[:8]] == [False] * 8
    assert flags[8:11] == [(True, "Alice"), (True, "Alice"), (True, "Bob")]
    assert flags[11] == (False, "Bob")


def test_a_clearly_bigger_face_is_embedded_again_before_its_interval() -> None:
    tracker = Tracker(TrackingSettings(confirm_votes=2, reembed_interval=50))
    for frame in range(3):
        _step(tracker, frame, [_det(100, 100, size=40)], ["Alice"])
    assert not _step(tracker, 3, [_det(100, 100, size=44)], ["Alice"])[0].embedded
    assert _step(tracker, 4, [_det(95, 95, size=60)], ["Alice"])[0].embedded


def test_embed_all_plans_every_detection() -> None:
    tracker = Tracker(TrackingSettings(confirm_votes=1))
    for frame in range(5):
        plan = tracker.assign([_det(100, 100), _det(300, 100)], frame, embed_all=True)
        assert plan.needs_embedding == (True, True)
        tracker.update(plan, [_det(100, 100), _det(300, 100)], {0: Match("A", 0.9), 1: Match("B", 0.9)})


def test_reset_forgets_tracks_and_never_reuses_an_id() -> None:
    tracker = Tracker()
    first = _step(tracker, 0, [_det(100, 100)], ["A"])[0].track_id
    tracker.reset()
    assert tracker.track_count == 0
    assert _step(tracker, 1, [_det(100, 100)], ["A"])[0].track_id != first


def test_redecide_replaces_the_vote_from_the_stored_embedding_without_embedding() -> None:
    from core.matching import Matcher

    rng = np.random.default_rng(3)
    alice = rng.standard_normal(16).astype(np.float32)
    face = alice + 0.6 * rng.standard_normal(16).astype(np.float32)  # like Alice, not identical
    matcher = Matcher(threshold=0.3, margin=0.0)
    matcher.set_gallery(alice[None, :], ["alice"])
    tracker = Tracker(TrackingSettings(confirm_votes=2, reembed_interval=10))
    det = [_det(100, 100)]
    for frame in range(2):
        plan = tracker.assign(det, frame)
        assert plan.to_embed == [0]  # unsettled: embedded every frame
        faces = tracker.update(plan, det, {0: matcher.match(face[None, :])[0]}, {0: face})
    assert faces[0].person == "alice"
    similarity = faces[0].similarity

    matcher.threshold = 0.99
    assert tracker.redecide(matcher.match) == 1
    plan = tracker.assign(det, 3)
    assert plan.to_embed == []  # the decision stays settled: no embedding forced by the change
    faces = tracker.update(plan, det, {})
    assert faces[0].person is None and faces[0].similarity == pytest.approx(similarity)

    matcher.threshold = 0.3
    tracker.redecide(matcher.match)
    plan = tracker.assign(det, 4)
    assert plan.to_embed == [] and tracker.update(plan, det, {})[0].person == "alice"


def test_redecide_skips_tracks_never_embedded_and_forget_drops_embeddings() -> None:
    tracker = Tracker(TrackingSettings())
    calls: list[int] = []

    def decide(embeddings: np.ndarray) -> list[Match]:
        calls.append(len(embeddings))
        return [Match(None, 0.0)] * len(embeddings)

    plan = tracker.assign([_det(100, 100)], 0)
    tracker.update(plan, [_det(100, 100)], {0: Match("A", 0.7)})  # a match but no embedding kept
    assert tracker.redecide(decide) == 0 and calls == []
    plan = tracker.assign([_det(100, 100)], 1)
    tracker.update(plan, [_det(100, 100)], {0: Match("A", 0.7)}, {0: np.ones(8, np.float32)})
    assert tracker.redecide(decide) == 1 and calls == [1]
    tracker.forget_embeddings()
    assert tracker.redecide(decide) == 0
