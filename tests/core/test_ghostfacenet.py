"""GhostFaceNetV2: structure, parameter counts against the published figures, and the checkpoint format."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from core.errors import CheckpointError, ModelNotFoundError
from core.ghostfacenet import (
    GhostFaceNetV2,
    infer_arch,
    load_backbone,
    make_divisible,
    save_backbone,
)


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _x(n: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, 112, 112, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def net() -> GhostFaceNetV2:
    torch.manual_seed(0)
    model = GhostFaceNetV2()
    # Calibrate the BN statistics as training would: with the initial (identity) ones the activations
    # of a random network grow into the thousands and every comparison below would be ill-conditioned.
    with torch.no_grad():
        for seed in range(2):
            model(_x(4, seed=100 + seed))
    return model.eval()


@pytest.mark.parametrize(
    ("value", "expected"),
    [(16, 16), (16 * 1.3, 20), (72 * 0.25, 20), (92 * 0.25, 24), (960 * 1.3, 1248), (1, 4), (10.9, 12)],
)
def test_make_divisible_rounds_to_multiples_of_four(value: float, expected: int) -> None:
    assert make_divisible(value, 4) == expected


@pytest.mark.parametrize(
    ("kwargs", "params"),
    [
        # MODEL_SPEC 2.8; V2-1.3-1 per-channel equals GhostFaceNets' own trainable count exactly.
        ({}, 4_164_416),
        ({"prelu": "scalar"}, 4_155_693),
        ({"width": 1.3, "stem_stride": 1}, 6_795_720),
        ({"width": 1.3, "prelu": "scalar"}, 6_743_189),
    ],
)
def test_parameter_counts_match_the_published_figures(kwargs: dict, params: int) -> None:
    assert _params(GhostFaceNetV2(**kwargs)) == params


def test_bn_buffers_of_w13_match_the_tf_original() -> None:
    model = GhostFaceNetV2(width=1.3, stem_stride=1)
    running = sum(b.numel() for k, b in model.state_dict().items() if "running_" in k)
    assert running == 84_568  # GhostFaceNets' non-trainable count for V2-1.3-1


@pytest.mark.parametrize(("stride", "final_map"), [(2, 4), (1, 7)])
def test_both_stem_strides_give_512_d_embeddings_at_112(stride: int, final_map: int) -> None:
    model = GhostFaceNetV2(stem_stride=stride).eval()
    assert model.final_map_size == final_map
    assert model.classifier.conv_dw.kernel_size == (final_map, final_map)
    with torch.inference_mode():
        features = model.forward_features(_x())
        out = model(_x())
    assert features.shape == (2, 960, final_map, final_map)
    assert out.shape == (2, 512)
    assert torch.isfinite(out).all()


def test_state_dict_layout_is_the_original_one(net: GhostFaceNetV2) -> None:
    state = net.state_dict()
    assert len(state) == 813
    assert [len(stage) for stage in net.blocks] == [1, 1, 1, 1, 1, 1, 5, 1, 4, 1]
    expected_shapes = {
        "conv_stem.weight": (16, 3, 3, 3),
        "act1.weight": (16,),
        "blocks.0.0.ghost1.primary_conv.0.weight": (8, 16, 1, 1),
        "blocks.1.0.conv_dw.weight": (48, 1, 3, 3),
        "blocks.1.0.bn_dw.running_var": (48,),
        "blocks.2.0.ghost1.short_conv.2.weight": (72, 1, 1, 5),
        "blocks.2.0.ghost1.short_conv.4.weight": (72, 1, 5, 1),
        "blocks.3.0.se.conv_reduce.weight": (20, 72, 1, 1),
        "blocks.3.0.se.conv_reduce.bias": (20,),
        "blocks.3.0.se.act1.weight": (20,),
        "blocks.6.3.shortcut.2.weight": (112, 80, 1, 1),
        "blocks.8.3.se.conv_expand.weight": (960, 240, 1, 1),
        "blocks.9.0.conv.weight": (960, 160, 1, 1),
        "blocks.9.0.bn1.num_batches_tracked": (),
        "classifier.conv_dw.weight": (960, 1, 4, 4),
        "classifier.conv.weight": (512, 960, 1, 1),
        "classifier.bn2.running_mean": (512,),
    }
    for key, shape in expected_shapes.items():
        assert tuple(state[key].shape) == shape, key
    # Plain ghost modules in blocks 0-1, DFC attention from block 2; never in ghost2.
    assert "blocks.1.0.ghost1.short_conv.0.weight" not in state
    assert "blocks.2.0.ghost2.short_conv.0.weight" not in state
    # ghost2 is linear: no PReLU slopes in it.
    assert not [
        k
        for k in state
        if ".ghost2." in k and k.endswith(("primary_conv.2.weight", "cheap_operation.2.weight"))
    ]


def test_scalar_prelu_has_one_slope_per_layer() -> None:
    model = GhostFaceNetV2(prelu="scalar")
    slopes = [m for m in model.modules() if isinstance(m, nn.PReLU)]
    assert len(slopes) == 41
    assert all(m.weight.shape == (1,) for m in slopes)


def test_bn_prelu_and_conv_initialisation(net: GhostFaceNetV2) -> None:
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert bns and all(m.momentum == pytest.approx(0.1) and m.eps == pytest.approx(1e-5) for m in bns)
    assert all(torch.all(m.weight == 0.25) for m in net.modules() if isinstance(m, nn.PReLU))
    # Kaiming-normal for a PReLU slope of 0.25: std = sqrt(2 / (fan_in * (1 + 0.25^2))).
    weight = net.blocks[9][0].conv.weight
    expected = math.sqrt(2.0 / (160 * (1 + 0.25**2)))
    assert weight.std().item() == pytest.approx(expected, rel=0.05)
    assert abs(weight.mean().item()) < 0.1 * expected


def test_dfc_upsampling_mode_changes_the_output_not_the_weights(net: GhostFaceNetV2) -> None:
    bilinear = GhostFaceNetV2(dfc_upsample="bilinear").eval()
    bilinear.load_state_dict(net.state_dict())
    with torch.inference_mode():
        a, b = net(_x()), bilinear(_x())
    assert a.shape == b.shape
    assert not torch.allclose(a, b, atol=1e-4)


def test_training_step_gives_finite_gradients_everywhere() -> None:
    torch.manual_seed(1)
    # A 64-pixel input keeps this cheap; the GDC kernel follows the smaller final map (2x2).
    model = GhostFaceNetV2(dropout=0.1, input_size=64).train()
    assert model.final_map_size == 2
    out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 512)
    out.pow(2).mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.bn1.num_batches_tracked.item() == 1


@pytest.mark.parametrize(
    "kwargs",
    [{"width": 0}, {"stem_stride": 3}, {"prelu": "channels"}, {"dfc_upsample": "bicubic"}, {"dropout": 1.0}],
)
def test_invalid_constructor_arguments_are_rejected(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        GhostFaceNetV2(**kwargs)


# ---------------------------------------------------------------------------------------------------
# Checkpoints


def test_save_and_load_round_trip(net: GhostFaceNetV2, tmp_path: Path) -> None:
    path = save_backbone(net, tmp_path / "b.pt", {"epochs": 3, "lfw": 0.5})
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "ghostface-backbone" and raw["version"] == 1
    assert (
        raw["arch"]["width"] == 1.0 and raw["arch"]["stem_stride"] == 2 and raw["arch"]["prelu"] == "channel"
    )
    assert raw["meta"] == {"epochs": 3, "lfw": 0.5}
    loaded = load_backbone(path)
    assert not loaded.training
    with torch.inference_mode():
        assert torch.equal(loaded(_x()), net(_x()))


def test_half_checkpoint_is_smaller_and_close(net: GhostFaceNetV2, tmp_path: Path) -> None:
    full = save_backbone(net, tmp_path / "full.pt", {})
    half = save_backbone(net, tmp_path / "half.pt", {}, half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded = load_backbone(half)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    with torch.inference_mode():
        a, b = net(_x()), loaded(_x())
    cos = torch.nn.functional.cosine_similarity(a, b)
    assert torch.all(cos > 0.999)


def test_meta_must_be_json_compatible(net: GhostFaceNetV2, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="JSON"):
        save_backbone(net, tmp_path / "x.pt", {"path": tmp_path})
    assert not (tmp_path / "x.pt").exists()


def test_original_layout_scalar_state_dict_loads_with_inferred_arch(tmp_path: Path) -> None:
    torch.manual_seed(2)
    original = GhostFaceNetV2(prelu="scalar").eval()
    # As saved by DataParallel training: every key under ``module.``.
    path = tmp_path / "ghostfacenet_v2_4_1.pth"
    torch.save({f"module.{k}": v for k, v in original.state_dict().items()}, path)
    loaded = load_backbone(path)
    assert loaded.arch["prelu"] == "scalar"
    assert loaded.arch["width"] == 1.0 and loaded.arch["stem_stride"] == 2
    with torch.inference_mode():
        assert torch.equal(loaded(_x()), original(_x()))


def test_arch_is_inferred_for_other_widths_and_strides() -> None:
    state = GhostFaceNetV2(width=1.3, stem_stride=1).state_dict()
    arch = infer_arch(state)
    assert (arch["width"], arch["stem_stride"], arch["prelu"], arch["embedding_size"]) == (
        1.3,
        1,
        "channel",
        512,
    )
    model = load_backbone({"state_dict": state})
    assert model.final_map_size == 7


def test_width_mismatch_names_the_first_keys_and_shapes(tmp_path: Path) -> None:
    wide = GhostFaceNetV2(width=1.3)
    path = save_backbone(wide, tmp_path / "wide.pt", {})
    payload = torch.load(path, weights_only=True)
    payload["arch"]["width"] = 1.0  # a file whose arch says 1.0 but whose weights are 1.3
    with pytest.raises(CheckpointError) as info:
        load_backbone(payload)
    message = str(info.value)
    assert "conv_stem.weight" in message
    assert "(20, 3, 3, 3)" in message and "(16, 3, 3, 3)" in message
    # The same through the arch override.
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_backbone(wide.state_dict(), arch={"width": 1.0})


def test_truncated_checkpoint_is_a_clear_error(net: GhostFaceNetV2, tmp_path: Path) -> None:
    path = save_backbone(net, tmp_path / "b.pt", {})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_backbone(path)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"this is a text file, not weights\n", "not a readable PyTorch checkpoint"),
        (None, "not a GhostFaceNetV2 checkpoint"),
    ],
)
def test_files_that_are_not_checkpoints_are_rejected(
    tmp_path: Path, content: bytes | None, match: str
) -> None:
    path = tmp_path / "model.pt"
    if content is None:
        torch.save({"epoch": 3, "lr": 0.1}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=match):
        load_backbone(path)


def test_other_networks_state_dict_is_rejected() -> None:
    with pytest.raises(CheckpointError, match="no 'blocks.9.0.conv.weight'"):
        load_backbone(nn.Linear(4, 2).state_dict())


def test_newer_format_version_is_rejected(net: GhostFaceNetV2, tmp_path: Path) -> None:
    payload = torch.load(save_backbone(net, tmp_path / "b.pt", {}), weights_only=True)
    payload["version"] = 99
    with pytest.raises(CheckpointError, match="version 99"):
        load_backbone(payload)


def test_missing_checkpoint_file(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        load_backbone(tmp_path / "absent.pt")


def test_wrapped_models_are_saved_with_plain_keys(net: GhostFaceNetV2, tmp_path: Path) -> None:
    path = save_backbone(nn.DataParallel(net), tmp_path / "dp.pt", {})
    state = torch.load(path, weights_only=True)["state_dict"]
    assert "conv_stem.weight" in state and not [k for k in state if k.startswith("module.")]
    with pytest.raises(TypeError, match="GhostFaceNetV2"):
        save_backbone(nn.Linear(2, 2), tmp_path / "x.pt", {})
