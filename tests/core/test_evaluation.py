"""Evaluation: LFW 10-fold maths on synthetic scores, pairs parsing, identification, and real smoke runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from core.detection import create_detector
from core.embedding import create_embedder
from core.evaluation import (
    EvaluationError,
    evaluate_identification,
    evaluate_lfw,
    identification_metrics,
    read_lfw_pairs,
    select_pairs,
    verification_metrics,
)


@pytest.fixture(scope="module")
def models() -> tuple:
    return create_detector("yunet"), create_embedder("sface")


def _scores(per_fold_same: int, per_fold_diff: int, folds: int, same_sim: float, diff_sim: float) -> tuple:
    sims, same = [], []
    for _ in range(folds):
        sims += [same_sim] * per_fold_same + [diff_sim] * per_fold_diff
        same += [True] * per_fold_same + [False] * per_fold_diff
    return np.array(sims), np.array(same)


def test_separable_scores_give_full_accuracy_and_a_threshold_between_them() -> None:
    # Off the 0.01 / 0.001 distance grids, so that no score ties with a scanned threshold.
    sims, same = _scores(30, 30, 10, same_sim=0.8123, diff_sim=0.1234)
    result = verification_metrics(sims, same, folds=10)
    assert result.accuracy == 1.0 and result.std == 0.0
    assert 0.1234 < result.threshold < 0.8123
    assert result.tar_at_far == 1.0 and result.far == 0.0


def test_one_impostor_above_every_genuine_pair_costs_exactly_one_pair() -> None:
    sims, same = _scores(30, 30, 10, same_sim=0.8, diff_sim=0.1)
    sims[30] = 0.95  # the first impostor pair of fold 0 looks more alike than any genuine pair
    result = verification_metrics(sims, same, folds=10)
    # Fold 0 misclassifies that pair (59/60); the other folds stay perfect.
    assert result.fold_accuracies[0] == pytest.approx(59 / 60)
    assert result.fold_accuracies[1:] == (1.0,) * 9
    assert result.accuracy == pytest.approx((9 + 59 / 60) / 10)
    assert result.std == pytest.approx(np.std([59 / 60] + [1.0] * 9))


def test_the_threshold_is_chosen_on_the_other_folds_not_the_tested_one() -> None:
    # In fold 0 alone the genuine pairs sit low (0.3); a threshold fitted there would separate them,
    # but the nine training folds choose a threshold between 0.4 and 0.8, so fold 0 fails its genuine pairs.
    sims, same = _scores(20, 20, 10, same_sim=0.8, diff_sim=0.0)
    sims[:20] = 0.3
    sims[20:40] = 0.0
    result = verification_metrics(sims, same, folds=10)
    assert result.fold_accuracies[0] == pytest.approx(0.5)
    assert result.accuracy == pytest.approx(0.95)


def test_val_at_far_on_overlapping_scores() -> None:
    rng = np.random.default_rng(3)
    n = 3000
    genuine = np.clip(rng.normal(0.3, 0.1, n), -1, 1)
    impostor = np.clip(rng.normal(0.0, 0.1, n), -1, 1)
    sims = np.empty(2 * n)
    same = np.empty(2 * n, bool)
    # Ten folds of 300 genuine then 300 impostor pairs, as LFW's pairs.txt orders them.
    for k in range(10):
        sims[600 * k : 600 * k + 300] = genuine[300 * k : 300 * (k + 1)]
        sims[600 * k + 300 : 600 * (k + 1)] = impostor[300 * k : 300 * (k + 1)]
        same[600 * k : 600 * k + 300] = True
        same[600 * k + 300 : 600 * (k + 1)] = False
    result = verification_metrics(sims, same, folds=10, target_far=1e-2)
    # Reference: the similarity 1 % of these impostors exceed, and the share of genuine pairs above it.
    tau = float(np.quantile(impostor, 0.99))
    expected_val = float((genuine > tau).mean())
    assert result.tar_at_far == pytest.approx(expected_val, abs=0.02)
    assert result.far == pytest.approx(1e-2, abs=0.006)
    assert 0.85 < result.accuracy < 0.97


def test_bad_inputs_to_the_metrics_are_clear_errors() -> None:
    with pytest.raises(EvaluationError, match="folds"):
        verification_metrics(np.zeros(5), np.zeros(5, bool), folds=10)
    with pytest.raises(EvaluationError, match="labels"):
        verification_metrics(np.zeros(20), np.zeros(19, bool))
    with pytest.raises(EvaluationError, match="both"):
        verification_metrics(np.zeros(20), np.ones(20, bool), folds=2)


def test_pairs_file_parsing(tmp_path: Path) -> None:
    path = tmp_path / "pairs.txt"
    path.write_text("2 1\nAlice 1 2\nAlice 1 Bob 3\nBob 1 4\nCarl 2 Dora 10\n")
    pairs, folds = read_lfw_pairs(path)
    assert folds == 2
    assert [(p.first, p.second, p.same, p.fold) for p in pairs] == [
        ("Alice/Alice_0001.jpg", "Alice/Alice_0002.jpg", True, 0),
        ("Alice/Alice_0001.jpg", "Bob/Bob_0003.jpg", False, 0),
        ("Bob/Bob_0001.jpg", "Bob/Bob_0004.jpg", True, 1),
        ("Carl/Carl_0002.jpg", "Dora/Dora_0010.jpg", False, 1),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "empty"), ("ten folds\n", "first line"), ("1 1\nAlice 1\n", "line 2"), ("1 1\nA x y\n", "line 2")],
)
def test_malformed_pairs_files_are_refused_with_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "pairs.txt"
    path.write_text(text)
    with pytest.raises(EvaluationError, match=message):
        read_lfw_pairs(path)


def test_the_lenient_mode_reads_validation_lists(lfw_dir: Path, tmp_path: Path) -> None:
    images = tmp_path / "crops"
    for person, number, ext in (("Alice", 1, ".png"), ("Alice", 2, ".jpg"), ("Bob", 3, ".webp")):
        (images / person).mkdir(parents=True, exist_ok=True)
        shutil.copy2(lfw_dir / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg", images / person / f"{person}_{number:04d}{ext}")
    headerless = tmp_path / "val.txt"
    headerless.write_text("Alice 1 2\nAlice 1 Bob 3\n")
    with pytest.raises(EvaluationError, match="first line"):
        read_lfw_pairs(headerless)  # the benchmark wants the real pairs.txt
    pairs, folds = read_lfw_pairs(headerless, lenient=True, images=images)
    assert folds == 1
    assert [(Path(p.first).name, Path(p.second).name, p.same, p.fold) for p in pairs] == [
        ("Alice_0001.png", "Alice_0002.jpg", True, 0),
        ("Alice_0001.png", "Bob_0003.webp", False, 0),
    ]
    with pytest.raises(EvaluationError, match="images folder is needed"):
        read_lfw_pairs(headerless, lenient=True)
    (images / "Bob" / "Bob_0003.webp").unlink()
    with pytest.raises(EvaluationError, match="pair image not found"):
        read_lfw_pairs(headerless, lenient=True, images=images)
    listing = tmp_path / "pairs.tsv"
    listing.write_text("a.jpg\tb.png\t1\t0\nc.jpg\td.jpg\t0\t1\n")
    pairs, folds = read_lfw_pairs(listing, lenient=True)
    assert folds == 2 and [(p.first, p.same, p.fold) for p in pairs] == [
        (str(tmp_path / "a.jpg"), True, 0),
        (str(tmp_path / "c.jpg"), False, 1),
    ]
    listing.write_text("a.jpg\tb.png\tyes\tfirst\n")
    with pytest.raises(EvaluationError, match="line 1"):
        read_lfw_pairs(listing, lenient=True)


def test_a_missing_pairs_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="cannot read"):
        read_lfw_pairs(tmp_path / "nope.txt")


def test_select_pairs_keeps_both_classes_in_every_fold(lfw_dir: Path) -> None:
    pairs, _ = read_lfw_pairs(lfw_dir / "pairs.txt")
    assert len(pairs) == 6000
    subset = select_pairs(pairs, 40)
    assert len(subset) == 40
    for fold in range(10):
        in_fold = [p for p in subset if p.fold == fold]
        assert sum(p.same for p in in_fold) == 2 and sum(not p.same for p in in_fold) == 2


def test_identification_metrics_by_hand() -> None:
    # Three gallery people; four mated probes (one wrongly ranked), three non-mated probes.
    scores = np.array(
        [
            [0.9, 0.1, 0.0],  # person 0, right, 0.9
            [0.2, 0.7, 0.1],  # person 1, right, 0.7
            [0.1, 0.2, 0.4],  # person 2, right, 0.4
            [0.6, 0.1, 0.5],  # person 2, wrong (ranks person 0 first)
        ]
    )
    truth = [0, 1, 2, 2]
    non_mated = np.array([0.5, 0.3, 0.2])
    rank1, dirs, taus = identification_metrics(scores, truth, non_mated, fpirs=(0.01, 0.34), missed_mated=1)
    assert rank1 == pytest.approx(3 / 5)  # the missed probe (no face) counts as a miss
    # FPIR 0.01 of 3 non-mated: none may pass, threshold 0.5: correct and above it are 0.9 and 0.7.
    assert taus["0.01"] == pytest.approx(0.5)
    assert dirs["0.01"] == pytest.approx(2 / 5)
    # FPIR 0.34: one non-mated may pass (0.5); threshold 0.3 lets 0.4 through as well.
    assert taus["0.34"] == pytest.approx(0.3)
    assert dirs["0.34"] == pytest.approx(3 / 5)
    _, no_dirs, _ = identification_metrics(scores, truth, np.zeros(0))
    assert no_dirs == {"0.01": None, "0.1": None}


def test_lfw_on_a_few_real_pairs_with_one_damaged_image(lfw_dir: Path, models: tuple, tmp_path: Path) -> None:
    detector, embedder = models
    pairs, _ = read_lfw_pairs(lfw_dir / "pairs.txt")
    subset = select_pairs(pairs, 20)  # one genuine and one impostor pair per fold
    copy = tmp_path / "lfw"
    for name in {p.first for p in subset} | {p.second for p in subset}:
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(lfw_dir / name, copy / name)
    # The genuine pair of fold 0 loses an image: it is scored as "different" and counted, not dropped.
    (copy / subset[0].first).write_bytes(b"not a jpeg")
    lines = ["10 1"] + [
        " ".join(
            [p.first.split("/")[0], p.first[-8:-4], p.second[-8:-4]]
            if p.same
            else [p.first.split("/")[0], p.first[-8:-4], p.second.split("/")[0], p.second[-8:-4]]
        )
        for p in subset
    ]
    (copy / "pairs.txt").write_text("\n".join(lines) + "\n")
    result = evaluate_lfw(copy, copy / "pairs.txt", detector, embedder)
    assert result.pairs == 20 and result.unreadable == 1 and result.no_face == 0
    assert result.pairs_without_face == 1
    assert result.verification.fold_accuracies[0] == 0.5
    # The real models decide (nearly) every other pair right, even with thresholds fitted on 18 pairs.
    assert result.verification.accuracy >= 0.85
    assert 0.1 < result.verification.threshold < 0.7


def test_identification_on_demo_photos(demo_dir: Path, models: tuple, tmp_path: Path) -> None:
    detector, embedder = models
    gallery = tmp_path / "gallery"
    for person in ("obama", "biden", "alex_lacamoire"):
        shutil.copytree(demo_dir / "knn_examples" / "train" / person, gallery / person)
    probes = tmp_path / "probes"
    (probes / "obama").mkdir(parents=True)
    (probes / "alex_lacamoire").mkdir(parents=True)
    (probes / "kit_harington").mkdir(parents=True)  # not in the gallery: non-mated
    shutil.copy(demo_dir / "obama-480p.jpg", probes / "obama")
    shutil.copy(demo_dir / "knn_examples" / "test" / "obama1.jpg", probes / "obama")
    shutil.copy(demo_dir / "alex-lacamoire.png", probes / "alex_lacamoire")
    shutil.copy(
        demo_dir / "knn_examples" / "train" / "kit_harington" / "john1.jpeg", probes / "kit_harington"
    )
    distractors = tmp_path / "distractors"
    distractors.mkdir()
    shutil.copy(demo_dir / "lin-manuel-miranda.png", distractors)
    result = evaluate_identification(gallery, probes, detector, embedder, distractors_dir=distractors)
    assert result.gallery_people == 3
    assert result.mated == 3 and result.non_mated == 2
    assert result.rank1 == 1.0
    assert result.dir_at_fpir["0.1"] is not None
    with pytest.raises(EvaluationError, match="does not exist"):
        evaluate_identification(gallery, tmp_path / "nope", detector, embedder)


def test_explicit_fold_ids_give_the_same_result_as_contiguous_folds() -> None:
    rng = np.random.default_rng(3)
    same = np.tile(np.repeat([True, False], 30), 10)
    sims = np.where(same, 0.6, 0.1) + rng.normal(0.0, 0.2, same.size)
    contiguous = verification_metrics(sims, same, folds=10)
    explicit = verification_metrics(sims, same, folds=np.repeat(np.arange(10), 60))
    assert explicit == contiguous
    # Shuffled fold ids change which pairs are held out together, hence the per-fold figures.
    shuffled = verification_metrics(sims, same, folds=rng.permutation(np.repeat(np.arange(10), 60)))
    assert shuffled.fold_accuracies != contiguous.fold_accuracies
    with pytest.raises(EvaluationError, match="fold ids"):
        verification_metrics(sims, same, folds=np.zeros(5, int))
