"""GhostFaceNetV2: the one definition of the face-embedding network, plus its checkpoint format.

The module layout (and therefore every state-dict key) follows the PyTorch GhostFaceNetV2 the original
project trained (``conv_stem``, ``bn1``, ``act1``, ``blocks.S.I...``, ``classifier...``), so its checkpoints
load with ``prelu="scalar"``. The defaults follow GhostFaceNets (per-channel PReLU, PyTorch BN momentum
0.1) and the GDC kernel is derived from the real final map size, so a stride-1 stem works too.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import math
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

import torch
import torch.nn.functional as F
from torch import nn

from core._atomic import atomic_write_bytes
from core.errors import CheckpointError, ModelNotFoundError

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "GhostFaceNetV2",
    "export_onnx",
    "infer_arch",
    "load_backbone",
    "make_divisible",
    "save_backbone",
]

log = logging.getLogger(__name__)

_EXPORT_LOCK = threading.Lock()

CHECKPOINT_FORMAT = "ghostface-backbone"
CHECKPOINT_VERSION = 1

PReLUMode = Literal["channel", "scalar"]
UpsampleMode = Literal["nearest", "bilinear"]

BN_MOMENTUM = 0.1  # PyTorch semantics: weight of the new batch (Keras 0.9 == PyTorch 0.1)
BN_EPS = 1e-5
PRELU_INIT = 0.25

# One row per bottleneck: (dw kernel, expansion channels, output channels, SE ratio, stride), at width 1.0.
# Rows are grouped into the stages of the original's ``blocks`` Sequential; the grouping fixes the keys.
_STAGES: tuple[tuple[tuple[int, int, int, float, int], ...], ...] = (
    ((3, 16, 16, 0.0, 1),),
    ((3, 48, 24, 0.0, 2),),
    ((3, 72, 24, 0.0, 1),),
    ((5, 72, 40, 0.25, 2),),
    ((5, 120, 40, 0.25, 1),),
    ((3, 240, 80, 0.0, 2),),
    (
        (3, 200, 80, 0.0, 1),
        (3, 184, 80, 0.0, 1),
        (3, 184, 80, 0.0, 1),
        (3, 480, 112, 0.25, 1),
        (3, 672, 112, 0.25, 1),
    ),
    ((5, 672, 160, 0.25, 2),),
    (
        (5, 960, 160, 0.0, 1),
        (5, 960, 160, 0.25, 1),
        (5, 960, 160, 0.0, 1),
        (5, 960, 160, 0.25, 1),
    ),
)
# Blocks 0 and 1 use the plain ghost module; every later block's first ghost module carries DFC attention.
_PLAIN_GHOST_BLOCKS = 2
_FINAL_CHANNELS = 960
_STEM_CHANNELS = 16


def make_divisible(value: float, divisor: int = 4) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` (at least ``divisor``), never 10% below it.

    This is the GhostNet channel-rounding rule ``md()``; every channel count of the network uses it.
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


def _prelu(channels: int, mode: PReLUMode) -> nn.PReLU:
    return nn.PReLU(num_parameters=channels if mode == "channel" else 1, init=PRELU_INIT)


def _conv_out(size: int, kernel: int, stride: int) -> int:
    # Every strided conv of the network pads kernel // 2.
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


class GhostModule(nn.Module):
    """Ghost module: a 1x1 primary conv plus a cheap 3x3 depthwise conv, concatenated.

    With ``attention=True`` it is the GhostNetV2 "attn" module: a DFC attention map computed at half
    resolution from the module input gates the ghost output.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        activated: bool,
        attention: bool,
        prelu: PReLUMode,
        dfc_upsample: UpsampleMode,
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.attention = attention
        self.dfc_upsample = dfc_upsample
        init_channels = math.ceil(out_channels / 2)
        # ``nn.Sequential()`` (no parameters) in the slot of the PReLU keeps the original's key indices.
        self.primary_conv = nn.Sequential(
            nn.Conv2d(in_channels, init_channels, 1, 1, 0, bias=False),
            _bn(init_channels),
            _prelu(init_channels, prelu) if activated else nn.Sequential(),
        )
        self.cheap_operation = nn.Sequential(
            nn.Conv2d(init_channels, init_channels, 3, 1, 1, groups=init_channels, bias=False),
            _bn(init_channels),
            _prelu(init_channels, prelu) if activated else nn.Sequential(),
        )
        if attention:
            self.short_conv = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, 1, 0, bias=False),
                _bn(out_channels),
                nn.Conv2d(out_channels, out_channels, (1, 5), 1, (0, 2), groups=out_channels, bias=False),
                _bn(out_channels),
                nn.Conv2d(out_channels, out_channels, (5, 1), 1, (2, 0), groups=out_channels, bias=False),
                _bn(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.primary_conv(x)
        x2 = self.cheap_operation(x1)
        out = torch.cat([x1, x2], dim=1)[:, : self.out_channels]
        if not self.attention:
            return out
        gate = torch.sigmoid(self.short_conv(F.avg_pool2d(x, kernel_size=2, stride=2)))
        size = (out.shape[-2], out.shape[-1])
        if self.dfc_upsample == "bilinear":
            # align_corners=False, no antialias: what tf.image.resize(bilinear) does in TF2.
            gate = F.interpolate(gate, size=size, mode="bilinear", align_corners=False)
        else:
            gate = F.interpolate(gate, size=size, mode="nearest")
        return out * gate


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation with a PReLU between the two 1x1 convs and a hard-sigmoid gate."""

    def __init__(self, channels: int, ratio: float, *, prelu: PReLUMode) -> None:
        super().__init__()
        reduced = make_divisible(channels * ratio, 4)
        self.conv_reduce = nn.Conv2d(channels, reduced, 1, bias=True)
        self.act1 = _prelu(reduced, prelu)
        self.conv_expand = nn.Conv2d(reduced, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.adaptive_avg_pool2d(x, 1)
        s = self.conv_expand(self.act1(self.conv_reduce(s)))
        return x * F.hardsigmoid(s)  # relu6(x + 3) / 6


class GhostBottleneck(nn.Module):
    """ghost1 (activated) -> [strided DW conv + BN] -> [SE] -> ghost2 (linear), plus a shortcut."""

    def __init__(
        self,
        in_channels: int,
        mid_channels: int,
        out_channels: int,
        kernel: int,
        stride: int,
        se_ratio: float,
        *,
        attention: bool,
        prelu: PReLUMode,
        dfc_upsample: UpsampleMode,
    ) -> None:
        super().__init__()
        self.stride = stride
        self.ghost1 = GhostModule(
            in_channels,
            mid_channels,
            activated=True,
            attention=attention,
            prelu=prelu,
            dfc_upsample=dfc_upsample,
        )
        if stride > 1:
            self.conv_dw = nn.Conv2d(
                mid_channels, mid_channels, kernel, stride, kernel // 2, groups=mid_channels, bias=False
            )
            self.bn_dw = _bn(mid_channels)
        self.se = SqueezeExcite(mid_channels, se_ratio, prelu=prelu) if se_ratio > 0 else None
        self.ghost2 = GhostModule(
            mid_channels,
            out_channels,
            activated=False,
            attention=False,
            prelu=prelu,
            dfc_upsample=dfc_upsample,
        )
        if in_channels == out_channels and stride == 1:
            self.shortcut = nn.Sequential()
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(
                    in_channels, in_channels, kernel, stride, kernel // 2, groups=in_channels, bias=False
                ),
                _bn(in_channels),
                nn.Conv2d(in_channels, out_channels, 1, 1, 0, bias=False),
                _bn(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ghost1(x)
        if self.stride > 1:
            y = self.bn_dw(self.conv_dw(y))
        if self.se is not None:
            y = self.se(y)
        y = self.ghost2(y)
        return y + self.shortcut(x)


class ConvBnAct(nn.Module):
    """1x1 conv, BN, PReLU: the layer between the last bottleneck and the embedding head."""

    def __init__(self, in_channels: int, out_channels: int, *, prelu: PReLUMode) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, 1, 0, bias=False)
        self.bn1 = _bn(out_channels)
        self.act1 = _prelu(out_channels, prelu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act1(self.bn1(self.conv(x)))


class ModifiedGDC(nn.Module):
    """Global depthwise conv over the whole final map, BN, dropout, 1x1 conv to the embedding, BN1d."""

    def __init__(self, channels: int, kernel: int, embedding_size: int, dropout: float) -> None:
        super().__init__()
        self.conv_dw = nn.Conv2d(channels, channels, kernel, groups=channels, bias=False)
        self.bn1 = _bn(channels)
        self.dropout = nn.Dropout(dropout)
        self.conv = nn.Conv2d(channels, embedding_size, 1, bias=False)
        self.bn2 = nn.BatchNorm1d(embedding_size, eps=BN_EPS, momentum=BN_MOMENTUM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.bn1(self.conv_dw(x)))
        return self.bn2(torch.flatten(self.conv(x), 1))


class GhostFaceNetV2(nn.Module):
    """GhostFaceNetV2 backbone with the modified GDC head: ``(N, 3, S, S)`` in, ``(N, embedding_size)`` out.

    The input is RGB mapped to [-1, 1]; the output embedding is *not* L2-normalised.

    Args:
        width: channel multiplier ("w" in "GhostFaceNetV2-w-s").
        stem_stride: stride of the stem conv ("s"): 2 gives a 4x4 final map at 112, 1 gives 7x7.
        embedding_size: length of the embedding.
        prelu: ``"channel"`` (one slope per channel, GhostFaceNets) or ``"scalar"`` (one slope per layer,
            needed to load the original project's checkpoints).
        dfc_upsample: how the half-resolution DFC attention map is resized back (``"nearest"`` as the
            PyTorch references, ``"bilinear"`` as the TF original).
        dropout: dropout probability in the head (0 in every known run).
        input_size: side of the square input the GDC kernel is sized for.
    """

    def __init__(
        self,
        width: float = 1.0,
        stem_stride: int = 2,
        embedding_size: int = 512,
        prelu: PReLUMode = "channel",
        dfc_upsample: UpsampleMode = "nearest",
        dropout: float = 0.0,
        input_size: int = 112,
    ) -> None:
        super().__init__()
        if width <= 0:
            raise ValueError(f"width must be positive, got {width}")
        if stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride}")
        if prelu not in ("channel", "scalar"):
            raise ValueError(f"prelu must be 'channel' or 'scalar', got {prelu!r}")
        if dfc_upsample not in ("nearest", "bilinear"):
            raise ValueError(f"dfc_upsample must be 'nearest' or 'bilinear', got {dfc_upsample!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if embedding_size < 1:
            raise ValueError(f"embedding_size must be positive, got {embedding_size}")
        self.arch: dict[str, Any] = {
            "width": float(width),
            "stem_stride": int(stem_stride),
            "embedding_size": int(embedding_size),
            "prelu": prelu,
            "dfc_upsample": dfc_upsample,
            "dropout": float(dropout),
            "input_size": int(input_size),
        }
        self.embedding_size = embedding_size
        # What the checkpoint says about itself (load_backbone fills it in); the engine reads its
        # calibrated "similarity_threshold" from here.
        self.meta: dict[str, Any] = {}

        stem = make_divisible(_STEM_CHANNELS * width, 4)
        self.conv_stem = nn.Conv2d(3, stem, 3, stem_stride, 1, bias=False)
        self.bn1 = _bn(stem)
        self.act1 = _prelu(stem, prelu)

        size = _conv_out(input_size, 3, stem_stride)
        in_channels = stem
        stages: list[nn.Module] = []
        block_index = 0
        for stage in _STAGES:
            layers = []
            for kernel, exp, out, se_ratio, stride in stage:
                out_channels = make_divisible(out * width, 4)
                layers.append(
                    GhostBottleneck(
                        in_channels,
                        make_divisible(exp * width, 4),
                        out_channels,
                        kernel,
                        stride,
                        se_ratio,
                        attention=block_index >= _PLAIN_GHOST_BLOCKS,
                        prelu=prelu,
                        dfc_upsample=dfc_upsample,
                    )
                )
                if stride > 1:
                    size = _conv_out(size, kernel, stride)
                in_channels = out_channels
                block_index += 1
            stages.append(nn.Sequential(*layers))
        final = make_divisible(_FINAL_CHANNELS * width, 4)
        stages.append(nn.Sequential(ConvBnAct(in_channels, final, prelu=prelu)))
        self.blocks = nn.Sequential(*stages)
        if size < 1:
            raise ValueError(f"input_size {input_size} is too small for this network")
        # The GDC kernel is the real final map size (4 at 112 with a stride-2 stem, 7 with stride 1).
        self.final_map_size = size
        self.classifier = ModifiedGDC(final, size, embedding_size, dropout)
        self._init_weights()

    def _init_weights(self) -> None:
        # Kaiming-normal for a PReLU slope of 0.25: std = sqrt(2 / (fan_in * (1 + 0.25^2))).
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(module.weight, a=PRELU_INIT, mode="fan_in", nonlinearity="leaky_relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The final feature map, before the GDC head: ``(N, md(960*w), m, m)``."""
        x = self.act1(self.bn1(self.conv_stem(x)))
        return self.blocks(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The embeddings ``(N, embedding_size)`` of a batch of faces (RGB in [-1, 1]); not L2-normalised."""
        return self.classifier(self.forward_features(x))


# --------------------------------------------------------------------------------------------------------
# Checkpoints


def save_backbone(
    model: GhostFaceNetV2, path: str | Path, meta: Mapping[str, Any], *, half: bool = False
) -> Path:
    """Write ``model`` as a self-describing backbone checkpoint (atomically).

    The file holds ``{"format", "version", "arch", "state_dict", "meta"}``; ``arch`` is the model's
    constructor arguments, so :func:`load_backbone` rebuilds the network without being told its shape.

    Args:
        model: the network to save (its weights are copied to the CPU); a DataParallel, DDP or
            ``torch.compile`` wrapper around it is unwrapped.
        path: destination file.
        meta: JSON-compatible information about the run (dataset, epochs, metrics, ...).
        half: store floating-point tensors as float16 (half the size); the loader casts them back.

    Returns:
        The path written.

    Raises:
        TypeError: ``model`` is not a GhostFaceNetV2, or ``meta`` is not JSON-compatible (it must load with ``torch.load(weights_only=True)``).
    """
    # Unwrap DataParallel/DDP (``.module``) and torch.compile (``._orig_mod``) so the keys stay plain.
    inner: nn.Module = model
    while isinstance(getattr(inner, "module", None), nn.Module) or isinstance(
        getattr(inner, "_orig_mod", None), nn.Module
    ):
        inner = cast(nn.Module, getattr(inner, "_orig_mod", None) or inner.module)
    if not isinstance(inner, GhostFaceNetV2):
        raise TypeError(f"save_backbone expects a GhostFaceNetV2, got {type(inner).__name__}")
    model = inner
    try:
        meta_plain = json.loads(json.dumps(dict(meta)))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"checkpoint meta must be JSON-compatible: {exc}") from exc
    state: dict[str, torch.Tensor] = {}
    for key, tensor in model.state_dict().items():
        tensor = tensor.detach().to("cpu")
        if half and tensor.is_floating_point():
            tensor = tensor.half()
        state[key] = tensor.clone()
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "arch": dict(model.arch),
        "state_dict": state,
        "meta": meta_plain,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


ModuleT = TypeVar("ModuleT", bound=nn.Module)


def to_memory_format(module: ModuleT, memory_format: torch.memory_format) -> ModuleT:
    """``module.to(memory_format=...)``: 4-d weights in that layout (channels-last: 1.45x faster on CPUs).

    One place for the call, because torch's type stubs leave out the keyword that ``Module.to`` accepts.
    """
    return module.to(memory_format=memory_format)  # type: ignore[call-overload, no-any-return]


def export_onnx(model: GhostFaceNetV2, path: str | Path, *, opset: int = 17) -> Path:
    """Write ``model`` as ONNX, atomically.

    Input ``crops``: N x 3 x 112 x 112 RGB in [-1, 1]; output ``embedding``: N x D, not normalised; the
    batch dimension is dynamic.

    This is the deployed form the engine runs on a CPU (OpenCV DNN, or any ONNX runtime); PyTorch stays
    the path for training and CUDA. The TorchScript-based exporter is used on purpose: it needs only the
    ``onnx`` package, where the dynamo exporter would add onnxscript to the dependencies.

    Raises:
        CheckpointError: the exporter failed (the message says why).
    """
    # A copy: exporting must not switch the caller's network to eval mode, fp32 or another layout.
    model = to_memory_format(copy.deepcopy(model).float().eval(), torch.contiguous_format)
    size = int(model.arch.get("input_size", 112))
    buffer = io.BytesIO()
    try:
        # The exporter keeps global state: two threads exporting at once (the app's live and gallery
        # workers loading one model) break each other ("GLOBALS.in_onnx_export must be True").
        with _EXPORT_LOCK, warnings.catch_warnings():
            # The TorchScript exporter announces its future removal on every call; torch is pinned.
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                model,
                (torch.zeros(1, 3, size, size),),
                buffer,  # type: ignore[arg-type]  # a binary file object is accepted, as documented
                input_names=["crops"],
                output_names=["embedding"],
                dynamic_axes={"crops": {0: "batch"}, "embedding": {0: "batch"}},
                opset_version=opset,
                dynamo=False,
            )
    except Exception as exc:  # the exporter raises many unrelated types; all mean "no ONNX file"
        raise CheckpointError(f"ONNX export of GhostFaceNetV2 failed: {exc}") from exc
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _read_checkpoint(path: Path | bytes, map_location: str | torch.device, source: str) -> Any:
    if isinstance(path, Path) and not path.is_file():
        raise ModelNotFoundError(f"checkpoint not found: {path}")
    try:
        # Bytes: the very bytes whose hash was checked, so a file swapped after the check is not loaded.
        return torch.load(
            io.BytesIO(path) if isinstance(path, bytes) else path, map_location=map_location, weights_only=True
        )
    except Exception as exc:  # noqa: BLE001 - a damaged file can fail deep in the unpickler with any error type
        raise CheckpointError(
            f"{source} is not a readable PyTorch checkpoint (truncated, corrupt or another kind of file): "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from exc


def _strip_prefix(state: Mapping[str, Any]) -> dict[str, Any]:
    # DataParallel / DistributedDataParallel save every key under ``module.``, torch.compile under
    # ``_orig_mod.``.
    out: dict[str, Any] = {}
    for key, value in state.items():
        key = str(key)
        while key.startswith(("module.", "_orig_mod.")):
            key = key.split(".", 1)[1]
        out[key] = value
    return out


def _as_state_dict(obj: Any, source: str) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None, dict]:
    """Split a loaded object into (state_dict, arch or None, meta)."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{source} does not hold a state dict (found {type(obj).__name__})")
    if obj.get("format") == CHECKPOINT_FORMAT:
        version = obj.get("version")
        if version != CHECKPOINT_VERSION:
            raise CheckpointError(
                f"{source} is a {CHECKPOINT_FORMAT} checkpoint of version {version}; this build reads "
                f"version {CHECKPOINT_VERSION}"
            )
        arch, state, meta = obj.get("arch"), obj.get("state_dict"), obj.get("meta") or {}
        if not isinstance(arch, Mapping) or not isinstance(state, Mapping):
            raise CheckpointError(f"{source} is a {CHECKPOINT_FORMAT} checkpoint without arch or state_dict")
        return _strip_prefix(state), dict(arch), dict(meta)
    # Training scripts commonly wrap the weights: {"state_dict": ...} or {"model": ...}.
    for wrapper in ("state_dict", "model", "backbone"):
        inner = obj.get(wrapper)
        if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
            return _strip_prefix(inner), None, {}
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return _strip_prefix(obj), None, {}
    raise CheckpointError(
        f"{source} is not a GhostFaceNetV2 checkpoint: expected a state dict of tensors or a "
        f"'{CHECKPOINT_FORMAT}' file, found keys {sorted(map(str, obj.keys()))[:8]}"
    )


def _shape(state: Mapping[str, torch.Tensor], key: str, source: str) -> tuple[int, ...]:
    tensor = state.get(key)
    if not isinstance(tensor, torch.Tensor):
        raise CheckpointError(f"{source} is not a GhostFaceNetV2 state dict: it has no '{key}'")
    return tuple(tensor.shape)


def infer_arch(state: Mapping[str, torch.Tensor], *, source: str = "state dict") -> dict[str, Any]:
    """Work out the constructor arguments of a raw GhostFaceNetV2 state dict from its tensor shapes.

    Width comes from the final 1x1 conv (``md(960*w)`` channels), the stem stride from the GDC kernel
    (4 for stride 2, 7 for stride 1 at a 112 input), PReLU granularity from the stem slope's length.
    The DFC upsampling mode leaves no trace in the weights; ``"nearest"`` (the PyTorch references) is
    assumed.

    Raises:
        CheckpointError: the shapes fit no GhostFaceNetV2.
    """
    final_channels = _shape(state, "blocks.9.0.conv.weight", source)[0]
    kernel = _shape(state, "classifier.conv_dw.weight", source)[-1]
    embedding_size = _shape(state, "classifier.conv.weight", source)[0]
    prelu: PReLUMode = "scalar" if _shape(state, "act1.weight", source) == (1,) else "channel"

    base = final_channels / _FINAL_CHANNELS
    candidates = [round(base, 2), round(base, 3)] + [round(base + d * 0.01, 2) for d in range(-5, 6)]
    width = next(
        (
            w
            for w in dict.fromkeys(candidates)
            if w > 0 and make_divisible(_FINAL_CHANNELS * w, 4) == final_channels
        ),
        None,
    )
    if width is None:
        raise CheckpointError(f"{source}: {final_channels} final channels fit no GhostFaceNetV2 width")
    stride = None
    for input_size in (112, 96, 128, 160, 224, 256):
        for s in (2, 1):
            probe = _final_map_size(input_size, s)
            if probe == kernel:
                stride, size = s, input_size
                break
        if stride is not None:
            break
    if stride is None:
        raise CheckpointError(
            f"{source}: a {kernel}x{kernel} GDC kernel fits no known input size and stem stride"
        )
    return {
        "width": float(width),
        "stem_stride": stride,
        "embedding_size": embedding_size,
        "prelu": prelu,
        "dfc_upsample": "nearest",
        "dropout": 0.0,
        "input_size": size,
    }


def _final_map_size(input_size: int, stem_stride: int) -> int:
    size = _conv_out(input_size, 3, stem_stride)
    for stage in _STAGES:
        for kernel, _exp, _out, _se, stride in stage:
            if stride > 1:
                size = _conv_out(size, kernel, stride)
    return size


def _check_fit(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs network {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if not (missing or unexpected or mismatched):
        return
    parts = []
    if mismatched:
        parts.append(f"{len(mismatched)} shape mismatches, first: " + "; ".join(mismatched[:3]))
    if missing:
        parts.append(f"{len(missing)} missing keys, first: " + ", ".join(missing[:3]))
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys, first: " + ", ".join(unexpected[:3]))
    arch = getattr(model, "arch", {})
    raise CheckpointError(f"{source} does not fit GhostFaceNetV2({arch}): " + " | ".join(parts))


def load_backbone(
    path_or_state: str | Path | bytes | Mapping[str, Any],
    *,
    map_location: str | torch.device = "cpu",
    arch: Mapping[str, Any] | None = None,
    source: str | None = None,
) -> GhostFaceNetV2:
    """Build a GhostFaceNetV2 and load weights into it, in eval mode.

    Accepts a file written by :func:`save_backbone`, or a raw state dict in the original project's layout
    (also wrapped in ``{"state_dict": ...}`` or saved with a ``module.`` prefix), as a path or already
    loaded. For a raw state dict the architecture is inferred from the shapes (:func:`infer_arch`).

    Args:
        path_or_state: checkpoint file, its bytes, or a loaded checkpoint / state dict.
        map_location: where tensors are loaded (as for :func:`torch.load`).
        arch: constructor arguments that override the stored or inferred ones.
        source: how messages name the checkpoint (default: its path).

    Raises:
        ModelNotFoundError: the file does not exist.
        CheckpointError: the file is unreadable, is not a GhostFaceNetV2 checkpoint, or its shapes do not
            fit the architecture (the message names the first mismatching keys and shapes).
    """
    if isinstance(path_or_state, str | Path):
        source = source or str(path_or_state)
        loaded = _read_checkpoint(Path(path_or_state), map_location, source)
    elif isinstance(path_or_state, bytes):
        source = source or "checkpoint"
        loaded = _read_checkpoint(path_or_state, map_location, source)
    else:
        source = source or "state dict"
        loaded = path_or_state
    state, stored_arch, meta = _as_state_dict(loaded, source)
    # The original's optional ImageNet-style classifier is not part of the embedding network.
    dropped = [k for k in state if k.startswith("classifier.linear.")]
    for key in dropped:
        del state[key]
    if dropped:
        log.info("%s: ignored the classification layer (%s)", source, ", ".join(dropped))
    resolved = dict(stored_arch) if stored_arch is not None else infer_arch(state, source=source)
    if arch:
        resolved.update(arch)
    try:
        model = GhostFaceNetV2(**resolved)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{source}: invalid architecture {resolved}: {exc}") from exc
    _check_fit(model, state, source)
    dtypes = model.state_dict()
    # fp16 checkpoints are cast back to the network's dtype (float32).
    state = {k: v.to(dtypes[k].dtype) if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    model.meta = meta
    return model.eval()
