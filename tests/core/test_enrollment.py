"""The guided-enrolment judge on real photos and the real Hamilton clip, with the real YuNet and SFace."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.detection import create_detector
from core.embedding import create_embedder
from core.enrollment import CaptureGuide, GuideConfig, Verdict, sharpness


@pytest.fixture(scope="module")
def models() -> tuple[object, object]:
    return create_detector("yunet"), create_embedder("sface")


def test_sharpness_drops_under_blur(demo_dir: Path) -> None:
    image = cv2.imread(str(demo_dir / "obama.jpg"))
    assert sharpness(image) > 3 * sharpness(cv2.blur(image, (9, 9)))


def test_guide_rejects_blur_small_several_and_duplicates(models: tuple, demo_dir: Path) -> None:
    detector, embedder = models
    guide = CaptureGuide(embedder.embed, GuideConfig(target_shots=3))
    obama = cv2.imread(str(demo_dir / "obama.jpg"))

    assert guide.assess(obama, []).verdict is Verdict.NO_FACE
    pair = cv2.imread(str(demo_dir / "two_people.jpg"))
    assert guide.assess(pair, detector.detect(pair)).verdict is Verdict.SEVERAL_FACES
    small = cv2.imread(str(demo_dir / "obama-240p.jpg"))
    assert guide.assess(small, detector.detect(small)).verdict is Verdict.TOO_SMALL
    blurred = cv2.blur(obama, (9, 9))
    verdict = guide.assess(blurred, detector.detect(blurred))
    assert verdict.verdict is Verdict.BLURRED and verdict.sharpness < guide.config.min_sharpness
    assert guide.count == 0

    first = guide.assess(obama, detector.detect(obama))
    assert first.accepted and guide.count == 1
    # The same photo again, one pixel shifted, is a duplicate by its embedding.
    shifted = np.roll(obama, 1, axis=1)
    again = guide.assess(shifted, detector.detect(shifted))
    assert again.verdict is Verdict.DUPLICATE and again.max_similarity >= guide.config.max_similarity
    assert guide.count == 1
    # A different photo of the same person adds a view.
    other = cv2.imread(str(demo_dir / "obama2.jpg"))
    assert guide.assess(other, detector.detect(other)).accepted
    assert guide.count == 2
    kept = guide.shots[0]
    assert kept.image.shape == obama.shape and kept.embedding.shape == (embedder.dim,)


def test_guide_on_the_hamilton_clip_keeps_a_full_set(models: tuple, hamilton_clip: Path) -> None:
    detector, embedder = models
    guide = CaptureGuide(embedder.embed, GuideConfig(target_shots=5))
    verdicts: Counter[Verdict] = Counter()
    cap = cv2.VideoCapture(str(hamilton_clip))
    try:
        while not guide.done:
            ok, frame = cap.read()
            if not ok:
                break
            verdicts[guide.assess(frame, detector.detect(frame)).verdict] += 1
    finally:
        cap.release()
    assert guide.done, verdicts
    # The clip has both a crowd (several faces) and a stage close-up: the guide saw both.
    assert verdicts[Verdict.SEVERAL_FACES] > 0
    embeddings = np.stack([s.embedding for s in guide.shots])
    sims = embeddings @ embeddings.T
    assert (sims[~np.eye(len(sims), dtype=bool)] < guide.config.max_similarity).all()
