"""Data folders, held-out validation pairs, pair lists, augmentation and class-balanced sampling."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from core.errors import ImageReadError
from trainer.data import (
    CropDataset,
    augment_batch,
    balanced_sampler,
    load_crop_rgb,
    make_holdout_pairs,
    read_pairs,
    scan_folders,
    split_holdout,
    subset_people,
)


def test_scan_labels_folders_and_leaves_loose_crops_unlabelled(tiny_data: Path) -> None:
    samples = scan_folders([tiny_data / "labelled", tiny_data / "unlabelled"])
    assert len(samples) == 24 * 6 + 16
    assert samples.num_classes == 24 and samples.num_labelled == 144
    assert all(name.startswith("labelled/") for name in samples.class_names)
    by_class = Counter(samples.labels.tolist())
    assert by_class[-1] == 16 and all(by_class[c] == 6 for c in range(24))
    # Too-small classes become unlabelled rather than disappearing.
    few = scan_folders([tiny_data / "labelled"], min_images_per_class=7)
    assert few.num_classes == 0 and len(few) == 144


def test_scan_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        scan_folders([tmp_path / "nope"])
    (tmp_path / "empty" / "person").mkdir(parents=True)
    with pytest.raises(ValueError, match="no images"):
        scan_folders([tmp_path / "empty"])


def test_holdout_pairs_are_identity_disjoint_and_balanced(tiny_data: Path) -> None:
    samples = scan_folders([tiny_data / "labelled"])
    rest, held = split_holdout(samples, 20, min_images=2, seed=3)
    assert len(held) == 20 and rest.num_classes == 4 and len(rest) == 24
    assert set(held).isdisjoint(rest.class_names)
    pairs = make_holdout_pairs(held, pairs_per_fold=5)
    assert {p.fold for p in pairs} == set(range(10))
    for fold in range(10):
        in_fold = [p for p in pairs if p.fold == fold]
        same = [p for p in in_fold if p.same]
        assert len(same) == 5 and len(in_fold) == 10
        assert all(p.a.parent == p.b.parent for p in same)
        assert all(p.a.parent != p.b.parent for p in in_fold if not p.same)
    people_per_fold = [{p.a.parent.name for p in pairs if p.fold == f} for f in range(10)]
    assert all(a.isdisjoint(b) for i, a in enumerate(people_per_fold) for b in people_per_fold[i + 1 :])
    with pytest.raises(ValueError, match="identities"):
        split_holdout(samples, 25, min_images=2)


def test_people_fraction_keeps_whole_people_after_the_holdout(tiny_data: Path) -> None:
    samples = scan_folders([tiny_data / "labelled", tiny_data / "unlabelled"])
    rest, held = split_holdout(samples, 4, min_images=2, seed=0)
    half = subset_people(rest, 0.5, seed=0)
    # 20 training people -> 10, each with all 6 crops; 16 loose crops (a person each) -> 8.
    assert half.num_classes == 10 and half.num_labelled == 60
    assert len(half) - half.num_labelled == 8
    assert Counter(half.labels[half.labels >= 0].tolist()) == {c: 6 for c in range(10)}
    for path, label in zip(half.paths, half.labels.tolist(), strict=True):
        if label >= 0:
            assert half.class_names[label] == f"labelled/{path.parent.name}"
    assert set(half.class_names) <= set(rest.class_names) and set(held).isdisjoint(half.class_names)
    # The seed decides who is kept; the same seed keeps the same people.
    assert subset_people(rest, 0.5, seed=0).paths == half.paths
    assert subset_people(rest, 0.5, seed=1).class_names != half.class_names
    assert subset_people(rest, 1.0) is rest
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="fraction"):
            subset_people(rest, bad)


def test_reads_the_lfw_pair_list(lfw_dir: Path) -> None:
    pairs = read_pairs(lfw_dir / "pairs.txt", lfw_dir)
    assert len(pairs) == 6000
    assert Counter(p.fold for p in pairs) == {f: 600 for f in range(10)}
    assert sum(p.same for p in pairs) == 3000
    assert pairs[0].same and pairs[0].a.is_file() and pairs[0].a.parent == pairs[0].b.parent


def test_reads_a_tab_separated_pair_list(tiny_data: Path, tmp_path: Path) -> None:
    crops = sorted((tiny_data / "unlabelled").glob("*.jpg"))
    listing = tmp_path / "pairs.tsv"
    listing.write_text(f"{crops[0]}\t{crops[1]}\t1\t0\n{crops[2]}\t{crops[3]}\t0\t1\n", encoding="utf-8")
    pairs = read_pairs(listing)
    assert [(p.same, p.fold) for p in pairs] == [(True, 0), (False, 1)]
    bad = tmp_path / "bad.txt"
    bad.write_text("10 300\nonly_a_name\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not an LFW pair line"):
        read_pairs(bad, tmp_path)


def test_dataset_skips_an_unreadable_crop(tiny_data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "crops" / "person"
    folder.mkdir(parents=True)
    good = sorted((tiny_data / "unlabelled").glob("*.jpg"))[:2]
    for crop in good:
        shutil.copy2(crop, folder / crop.name)
    (folder / "0_broken.jpg").write_bytes(b"not a jpeg")
    samples = scan_folders([tmp_path / "crops"])
    with pytest.raises(ImageReadError):
        load_crop_rgb(folder / "0_broken.jpg")
    dataset = CropDataset(samples, flip=False)
    image, label, index, flipped = dataset[0]  # the broken file sorts first
    assert image.shape == (3, 112, 112) and image.dtype == torch.uint8
    assert samples.paths[index].name != "0_broken.jpg" and not flipped and label == 0


def test_flip_is_reported_per_item(tiny_data: Path) -> None:
    samples = scan_folders([tiny_data / "unlabelled"])
    dataset = CropDataset(samples, flip=True)
    plain = torch.from_numpy(load_crop_rgb(samples.paths[0])).permute(2, 0, 1)
    seen = set()
    for _ in range(40):
        image, _label, _index, flipped = dataset[0]
        seen.add(flipped)
        assert torch.equal(image, plain.flip(2) if flipped else plain)
    assert seen == {True, False}


def test_augment_batch_normalises_to_unit_range() -> None:
    batch = torch.tensor([0, 255], dtype=torch.uint8).repeat_interleave(3 * 4 * 4 // 2).view(1, 3, 4, 4)
    out = augment_batch(batch, 0.0)
    assert out.min().item() == -1.0 and out.max().item() == 1.0
    jittered = augment_batch(torch.full((8, 3, 4, 4), 128, dtype=torch.uint8), 0.25)
    assert jittered.abs().max() <= 1.0


def test_balanced_sampler_draws_classes_evenly(tiny_data: Path, tmp_path: Path) -> None:
    # Two identities, one with 6 crops and one with 1: unbalanced 6:1, balanced about 1:1.
    for name, count in (("big", 6), ("small", 1)):
        (tmp_path / name).mkdir()
        for crop in sorted((tiny_data / "unlabelled").glob("*.jpg"))[:count]:
            shutil.copy2(crop, tmp_path / name / crop.name)
    samples = scan_folders([tmp_path])
    sampler = balanced_sampler(samples, seed=1)
    sampler.num_samples = 7000
    draws = Counter(samples.labels[i] for i in sampler)
    assert abs(draws[0] / draws[1] - 1.0) < 0.1
    assert np.isclose(sum(draws.values()), 7000)
