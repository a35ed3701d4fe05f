"""Umeyama similarity fit and the 112x112 warp, on synthetic points and on a real face."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from core.alignment import ARCFACE_TEMPLATE, align_face, align_faces, estimate_similarity, template_for_size
from core.detection import create_detector


def _similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    rot = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return np.hstack([rot, [[tx], [ty]]])


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


@pytest.mark.parametrize(
    ("angle", "scale", "tx", "ty"), [(0, 1, 0, 0), (17, 2.5, -40, 13), (-150, 0.3, 5, 900)]
)
def test_recovers_a_known_similarity_exactly(angle: float, scale: float, tx: float, ty: float) -> None:
    rng = np.random.default_rng(7)
    src = rng.uniform(0, 300, size=(5, 2))
    truth = _similarity(angle, scale, tx, ty)
    estimated = estimate_similarity(src, _apply(truth, src))
    assert estimated.shape == (2, 3)
    np.testing.assert_allclose(estimated, truth, atol=1e-9)


def test_least_squares_under_noise_beats_the_truth_residual() -> None:
    rng = np.random.default_rng(3)
    src = rng.uniform(0, 200, size=(5, 2))
    truth = _similarity(30, 1.7, 10, -20)
    dst = _apply(truth, src) + rng.normal(0, 2.0, size=(5, 2))
    estimated = estimate_similarity(src, dst)
    fit = np.linalg.norm(_apply(estimated, src) - dst)
    assert fit <= np.linalg.norm(_apply(truth, src) - dst) + 1e-9
    # A similarity [[a, -b, tx], [b, a, ty]] is linear in (a, b, tx, ty): solve it independently.
    rows = []
    for x, y in src:
        rows += [[x, -y, 1, 0], [y, x, 0, 1]]
    (a, b, tx, ty), *_ = np.linalg.lstsq(np.array(rows), dst.reshape(-1), rcond=None)
    np.testing.assert_allclose(estimated, [[a, -b, tx], [b, a, ty]], atol=1e-8)


def test_reflection_is_excluded() -> None:
    src = ARCFACE_TEMPLATE.astype(np.float64)
    mirrored = src.copy()
    mirrored[:, 0] = 112.0 - mirrored[:, 0]
    estimated = estimate_similarity(src, mirrored)
    assert np.linalg.det(estimated[:, :2]) > 0  # a rotation, never a flip
    # The best proper similarity cannot reproduce a mirror image.
    assert np.abs(_apply(estimated, src) - mirrored).max() > 5.0


def test_template_maps_to_itself() -> None:
    np.testing.assert_allclose(
        estimate_similarity(ARCFACE_TEMPLATE, ARCFACE_TEMPLATE), np.eye(2, 3), atol=1e-6
    )
    assert ARCFACE_TEMPLATE.shape == (5, 2) and ARCFACE_TEMPLATE.dtype == np.float32
    np.testing.assert_allclose(template_for_size(224), ARCFACE_TEMPLATE * 2, atol=1e-5)
    with pytest.raises(ValueError, match="multiple of 112 or 128"):
        template_for_size(100)


def test_degenerate_points_are_rejected() -> None:
    with pytest.raises(ValueError, match="degenerate"):
        estimate_similarity(np.ones((5, 2)), ARCFACE_TEMPLATE)
    with pytest.raises(ValueError, match="shape"):
        estimate_similarity(np.ones((5, 2)), np.ones((4, 2)))


def test_warp_puts_landmarks_on_the_template() -> None:
    # Draw dots at known landmark positions on a grey canvas, warp, and find the dots again.
    canvas = np.full((400, 400, 3), 90, np.uint8)
    landmarks = _apply(_similarity(20, 2.2, 150, 40), ARCFACE_TEMPLATE.astype(np.float64))
    for x, y in landmarks:
        cv2.circle(canvas, (round(x), round(y)), 4, (255, 255, 255), -1)
    crop = align_face(canvas, landmarks.astype(np.float32))
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    _, _, _, centroids = cv2.connectedComponentsWithStats((crop[:, :, 0] > 170).astype(np.uint8))
    found = centroids[1:]
    assert len(found) == 5
    for point in ARCFACE_TEMPLATE:
        assert np.linalg.norm(found - point, axis=1).min() < 1.0


def test_outside_the_frame_is_black() -> None:
    image = np.full((60, 60, 3), 200, np.uint8)
    # A face four times the template's size, centred on the image: the crop shows a 448 px square
    # around the 60 px image, so everything but the middle lies outside the frame.
    landmarks = ARCFACE_TEMPLATE * 4 - 194
    crop = align_face(image, landmarks)
    assert crop[0, 0].tolist() == [0, 0, 0] and crop[111, 111].tolist() == [0, 0, 0]
    assert crop[56, 56].tolist() == [200, 200, 200]


def test_real_face_aligns_onto_the_template(demo_dir: Path) -> None:
    detector = create_detector("yunet")
    photo = cv2.imread(str(demo_dir / "two_people.jpg"))
    faces = detector.detect(photo)
    crops = align_faces(photo, [f.landmarks for f in faces])
    assert crops.shape == (len(faces), 112, 112, 3) and crops.dtype == np.uint8
    assert len(faces) == 2
    for crop in crops:
        # Detect again on the crop (padded: YuNet needs context around a face).
        padded = cv2.copyMakeBorder(crop, 56, 56, 56, 56, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        again = detector.detect(cv2.resize(padded, None, fx=2, fy=2))
        assert again, "no face found on the aligned crop"
        eyes = again[0].landmarks[:2] / 2 - 56
        assert np.abs(eyes - ARCFACE_TEMPLATE[:2]).max() < 6.0
    assert align_faces(photo, []).shape == (0, 112, 112, 3)
