"""Matching: best-of-photos cosine per person, threshold, top-1/top-2 margin, optional mean."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from core.matching import Matcher


def _unit(*values: float) -> np.ndarray:
    v = np.asarray(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def _angle(degrees: float) -> np.ndarray:
    """A unit vector in the first two dimensions of a 4-d space (cosine with e1 = cos(angle))."""
    r = np.deg2rad(degrees)
    return np.array([np.cos(r), np.sin(r), 0, 0], dtype=np.float32)


def test_a_person_is_matched_by_the_best_of_their_photos() -> None:
    matcher = Matcher(threshold=0.5, margin=0.05)
    # Alice has one photo far from the query and one close to it; Bob's only photo is in between.
    matcher.set_gallery(np.stack([_angle(80), _angle(40), _angle(5)]), ["Alice", "Bob", "Alice"])
    (match,) = matcher.match(_angle(0)[None])
    assert match.person == "Alice"
    assert match.similarity == pytest.approx(np.cos(np.deg2rad(5)), abs=1e-6)
    assert match.second_person == "Bob"
    assert match.second_similarity == pytest.approx(np.cos(np.deg2rad(40)), abs=1e-6)


def test_below_the_threshold_is_unknown_but_keeps_the_similarity() -> None:
    matcher = Matcher(threshold=0.9, margin=0.0)
    matcher.set_gallery(_angle(60)[None], ["Alice"])
    (match,) = matcher.match(_angle(0)[None])
    assert match.person is None
    assert not match.known
    assert match.similarity == pytest.approx(0.5, abs=1e-6)
    matcher.threshold = 0.4  # thresholds are live
    assert matcher.match(_angle(0)[None])[0].person == "Alice"


def test_a_close_call_between_two_people_is_unknown() -> None:
    matcher = Matcher(threshold=0.3, margin=0.1)
    matcher.set_gallery(np.stack([_angle(20), _angle(-22)]), ["Alice", "Bob"])
    (match,) = matcher.match(_angle(0)[None])
    # Both are well above the threshold, but 0.940 - 0.927 is less than the margin.
    assert match.person is None
    assert match.similarity > 0.9 and match.second_similarity > 0.9
    matcher.margin = 0.0
    assert matcher.match(_angle(0)[None])[0].person == "Alice"


def test_the_mean_embedding_can_decide_when_asked() -> None:
    # Two photos on either side of the query: each alone is below the threshold, their mean is on it.
    gallery = np.stack([_angle(50), _angle(-50), _angle(175)])
    labels = ["Alice", "Alice", "Bob"]
    query = _angle(0)[None]
    plain = Matcher(threshold=0.8, margin=0.05)
    plain.set_gallery(gallery, labels)
    assert plain.match(query)[0].person is None
    with_mean = Matcher(threshold=0.8, margin=0.05, use_mean=True)
    with_mean.set_gallery(gallery, labels)
    match = with_mean.match(query)[0]
    assert match.person == "Alice"
    assert match.similarity == pytest.approx(1.0, abs=1e-6)


def test_an_empty_gallery_makes_everyone_unknown() -> None:
    matcher = Matcher(0.3, 0.05)
    matches = matcher.match(np.ones((2, 8), np.float32))
    assert [m.person for m in matches] == [None, None]
    assert all(m.similarity == -1.0 for m in matches)
    matcher.set_gallery(np.ones((1, 8), np.float32), ["A"])
    matcher.set_gallery(np.zeros((0, 8), np.float32), [])
    assert matcher.size == 0 and matcher.people == ()


def test_vectorised_matching_agrees_with_a_plain_loop() -> None:
    rng = np.random.default_rng(7)
    gallery = rng.standard_normal((400, 32)).astype(np.float32)
    # Interleaved, unsorted labels: the grouping must not depend on the order photos come in.
    labels = [f"p{int(i)}" for i in rng.integers(0, 37, size=400)]
    queries = rng.standard_normal((25, 32)).astype(np.float32)
    queries[:5] = gallery[:5] + 0.05 * rng.standard_normal((5, 32)).astype(np.float32)
    matcher = Matcher(threshold=0.2, margin=0.02)
    matcher.set_gallery(gallery, labels)
    got = matcher.match(queries)

    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    for q, match in zip(queries, got, strict=True):
        q = q / np.linalg.norm(q)
        best: dict[str, float] = {}
        for row, label in zip(g, labels, strict=True):
            best[label] = max(best.get(label, -2.0), float(row @ q))
        ranked = sorted(best.items(), key=lambda kv: -kv[1])
        (p1, s1), (_, s2) = ranked[0], ranked[1]
        expected = p1 if s1 >= 0.2 and s1 - s2 >= 0.02 else None
        assert match.person == expected
        assert match.similarity == pytest.approx(s1, abs=1e-5)
        assert match.second_similarity == pytest.approx(s2, abs=1e-5)
    assert sum(m.person is not None for m in got) >= 5  # the near-copies are recognised
    for i in range(8):  # one face at a time takes a faster path; it must decide the same
        single = matcher.match(queries[i : i + 1])[0]
        assert single.person == got[i].person and single.second_person == got[i].second_person
        assert single.similarity == pytest.approx(got[i].similarity, abs=1e-6)


def test_bad_gallery_or_query_is_refused_with_a_clear_message() -> None:
    matcher = Matcher(0.3, 0.05)
    with pytest.raises(ValueError, match="labels"):
        matcher.set_gallery(np.ones((3, 4), np.float32), ["a", "b"])
    with pytest.raises(ValueError, match="NaN"):
        matcher.set_gallery(np.full((1, 4), np.nan, np.float32), ["a"])
    matcher.set_gallery(np.ones((1, 4), np.float32), ["a"])
    with pytest.raises(ValueError, match="another model"):
        matcher.match(np.ones((1, 8), np.float32))
    # A refused gallery leaves the previous one in place.
    assert matcher.people == ("a",)


def test_the_gallery_can_be_swapped_while_another_thread_matches() -> None:
    matcher = Matcher(0.5, 0.0)
    a = np.stack([_angle(0), _angle(90)])
    matcher.set_gallery(a, ["A", "B"])
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                person = matcher.match(_angle(0)[None])[0].person
                assert person in {"A", "C"}
        except BaseException as exc:  # reported to the main thread below
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    for i in range(300):
        matcher.set_gallery(a, ["A", "B"] if i % 2 else ["C", "B"])
    stop.set()
    thread.join()
    assert errors == []
