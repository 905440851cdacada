"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1``) as a PyTorch module.

The network follows ``examples/dnn_face_recognition_ex.cpp``: a 7x7/2 stem, 3+4+3+3+1 residual blocks of 3x3
convolutions with affine (frozen batch-norm) layers, global average pooling and a 128-d linear projection.
Weights come from dlib's ``.dat`` file through :class:`~maskface.models.dlib_format.DlibReader`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from maskface.models.dlib_format import DlibReader
from maskface.models.registry import register_model

#: RGB means subtracted by dlib's ``input_rgb_image_sized``; the result is divided by 256.
DLIB_RGB_MEAN = (122.782, 117.001, 104.298)
DLIB_INPUT_SCALE = 256.0

#: (channels, blocks, first block downsamples), in the order data flows (dlib's level4 ... level0).
STAGES = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))


def add_zero_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: sum two NCHW tensors, zero-padding the smaller at the bottom/right and in channels."""
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def pad(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return pad(a) + pad(b)


class Affine(nn.Module):
    """Per-channel ``gamma * x + beta``: dlib's ``affine`` layer (a batch-norm frozen after training)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.bias.view(1, -1, 1, 1), x, self.weight.view(1, -1, 1, 1))


class ResidualBlock(nn.Module):
    """conv3x3(stride) - affine - relu - conv3x3 - affine, plus the (avg-pooled when downsampling) input, relu."""

    def __init__(self, in_channels: int, channels: int, downsample: bool):
        super().__init__()
        self.downsample = downsample
        stride, padding = (2, 0) if downsample else (1, 1)
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, padding)
        self.affine1 = Affine(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.affine2 = Affine(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        shortcut = F.avg_pool2d(x, 2, 2) if self.downsample else x
        return F.relu(add_zero_padded(out, shortcut))


class DlibResNet(nn.Module):
    """The 29-conv-layer ResNet; input is 150x150 RGB chips as float in [0, 255], NCHW; output 128-d."""

    input_size = 150

    def __init__(self, embedding_size: int = 128):
        super().__init__()
        self.register_buffer("rgb_mean", torch.tensor(DLIB_RGB_MEAN).view(1, 3, 1, 1), persistent=False)
        self.stem_conv = nn.Conv2d(3, 32, 7, 2, 0)
        self.stem_affine = Affine(32)
        blocks, in_channels = [], 32
        for channels, count, downsample in STAGES:
            for i in range(count):
                blocks.append(ResidualBlock(in_channels, channels, downsample and i == 0))
                in_channels = channels
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(in_channels, embedding_size, bias=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled 256-d features before the projection (useful for students and heads)."""
        x = (x - self.rgb_mean) / DLIB_INPUT_SCALE
        x = F.max_pool2d(F.relu(self.stem_affine(self.stem_conv(x))), 3, 2)
        return self.blocks(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))

    def fused(self) -> DlibResNet:
        """An inference copy with every affine layer folded into the convolution before it: the same embeddings up
        to float rounding, and about 15 % faster on a CPU. Not for training, which updates the affine layers."""
        model = copy.deepcopy(self).eval()
        pairs = [(model, "stem_conv", "stem_affine")] + [
            (block, f"conv{i}", f"affine{i}") for block in model.blocks for i in (1, 2)]
        with torch.no_grad():
            for owner, conv_name, affine_name in pairs:
                conv, affine = getattr(owner, conv_name), getattr(owner, affine_name)
                conv.weight.mul_(affine.weight.view(-1, 1, 1, 1))
                conv.bias.mul_(affine.weight).add_(affine.bias)
                setattr(owner, affine_name, nn.Identity())
        return model


# --- reading dlib's .dat file ------------------------------------------------------------------------------------


@dataclass
class _Layer:
    """One record of the network: ``kind`` is con/affine/relu/max_pool/avg_pool/add_prev/fc/tag/skip."""

    kind: str
    module: str = ""  # dotted attribute path of the parameters it fills, for con/affine/fc


def _layer_records() -> list[_Layer]:
    """The layer records of dlib's network from the outside (loss) in, mirroring the C++ template nesting."""
    inner_first: list[_Layer] = [_Layer("con", "stem_conv"), _Layer("affine", "stem_affine"), _Layer("relu"),
                                 _Layer("max_pool")]
    index = 0
    for _channels, count, downsample in STAGES:
        for i in range(count):
            name = f"blocks.{index}"
            block = [_Layer("tag"), _Layer("con", f"{name}.conv1"), _Layer("affine", f"{name}.affine1"),
                     _Layer("relu"), _Layer("con", f"{name}.conv2"), _Layer("affine", f"{name}.affine2")]
            if downsample and i == 0:  # add_prev2<avg_pool<skip1<tag2<block<tag1<...>>>>>>
                block += [_Layer("tag"), _Layer("skip"), _Layer("avg_pool"), _Layer("add_prev")]
            else:  # add_prev1<block<tag1<...>>>
                block += [_Layer("add_prev")]
            inner_first += block + [_Layer("relu")]
            index += 1
    inner_first += [_Layer("avg_pool_everything"), _Layer("fc", "fc")]
    return inner_first[::-1]


def _read_details(reader: DlibReader, layer: _Layer, params: dict[str, np.ndarray]) -> None:
    """Read one layer's own record (its 'details'), storing parameters under ``layer.module``."""
    if layer.kind == "con":
        version = reader.expect_string("con_4", "con_5", "con_6")
        flat = reader.read_tensor().ravel()
        filters_n = reader.read_int()
        nr, nc, sy, sx, py, px = (reader.read_int() for _ in range(6))
        f_shape = reader.read_alias_tensor()
        b_shape = reader.read_alias_tensor()
        for _ in range(4):  # learning-rate and weight-decay multipliers
            reader.read_float()
        if version in ("con_5", "con_6") and not reader.read_bool():
            b_shape = (0, 0, 0, 0)
        if version == "con_6":
            reader.read_bool()
        n_f = int(np.prod(f_shape))
        params[f"{layer.module}.weight"] = flat[:n_f].reshape(f_shape)
        n_b = int(np.prod(b_shape))
        params[f"{layer.module}.bias"] = flat[n_f : n_f + n_b] if n_b else np.zeros(filters_n, np.float32)
        if (nr, nc) != f_shape[2:] or sy != sx or py != px:
            raise reader.fail(f"unexpected convolution geometry {nr}x{nc} stride {sy} padding {py}")
    elif layer.kind == "affine":
        version = reader.expect_string("affine_", "affine_2")
        flat = reader.read_tensor().ravel()
        g_shape = reader.read_alias_tensor()
        reader.read_alias_tensor()
        reader.read_int()  # layer mode (conv)
        if version == "affine_2":
            reader.read_bool()
        n = int(np.prod(g_shape))
        params[f"{layer.module}.weight"], params[f"{layer.module}.bias"] = flat[:n], flat[n : 2 * n]
    elif layer.kind == "fc":
        version = reader.expect_string("fc_2", "fc_3")
        n_out, n_in = reader.read_int(), reader.read_int()
        flat = reader.read_tensor().ravel()
        reader.read_alias_tensor()
        reader.read_alias_tensor()
        reader.expect_int(1, what="fc bias mode (1 = no bias)")
        for _ in range(4):
            reader.read_float()
        if version == "fc_3":
            reader.read_bool()  # use_bias
        params["fc.weight"] = flat[: n_in * n_out].reshape(n_in, n_out).T.copy()  # stored (in, out)
    elif layer.kind == "relu":
        if reader.expect_string("relu_", "relu_2") == "relu_2":
            reader.read_bool()
    elif layer.kind in ("max_pool", "avg_pool", "avg_pool_everything"):
        reader.expect_string(f"{layer.kind.split('_everything')[0]}_2")
        for _ in range(6):
            reader.read_int()
    elif layer.kind == "add_prev":
        reader.expect_string("add_prev_")
    else:  # pragma: no cover - guarded by the record list
        raise reader.fail(f"unknown layer kind {layer.kind}")


def _read_subnet(reader: DlibReader, layers: list[_Layer], i: int, params: dict[str, np.ndarray]) -> None:
    """Recursive descent over ``add_layer`` / ``add_tag_layer`` / ``add_skip_layer`` records, as dlib nests them."""
    layer = layers[i]
    if layer.kind in ("tag", "skip"):
        reader.expect_int(1, what=f"{layer.kind} layer version")
        _read_subnet(reader, layers, i + 1, params)
        return
    if i == len(layers) - 1:  # add_layer<con_, input_rgb_image_sized<150>>
        version = reader.expect_int(2, 3, what="input add_layer version")
        reader.expect_string("input_rgb_image_sized")
        mean = tuple(reader.read_float() for _ in range(3))
        size = (reader.read_int(), reader.read_int())
        if size != (150, 150) or not np.allclose(mean, DLIB_RGB_MEAN, atol=1e-3):
            raise reader.fail(f"unexpected input layer: mean {mean}, size {size}")
    else:
        version = reader.expect_int(1, 2, what="add_layer version")
        _read_subnet(reader, layers, i + 1, params)
    _read_details(reader, layer, params)
    for _ in range(3):  # this_layer_setup_called, gradient_input_is_stale, get_output_and_gradient_input_disabled
        reader.read_bool()
    reader.read_tensor()  # x_grad
    reader.read_tensor()  # cached_output
    if i == len(layers) - 1:
        reader.read_tensor()  # grad_final
        if version >= 3:
            reader.read_int()  # sample expansion factor
    elif version == 2:
        reader.read_tensor()  # params_grad


def read_dlib_resnet_params(path: str | Path) -> dict[str, np.ndarray]:
    """Parse ``dlib_face_recognition_resnet_model_v1.dat`` to its last byte; return PyTorch state-dict arrays."""
    reader = DlibReader.from_file(path)
    reader.expect_int(1, what="loss layer version")
    if reader.expect_string("loss_metric_", "loss_metric_2") == "loss_metric_2":
        reader.read_float()
        reader.read_float()
    params: dict[str, np.ndarray] = {}
    _read_subnet(reader, _layer_records(), 0, params)
    if not reader.at_end:
        raise reader.fail("unexpected bytes after the network")
    return params


def load_dlib_resnet(path: str | Path) -> DlibResNet:
    """Build :class:`DlibResNet` with the weights of a dlib ``.dat`` file."""
    model = DlibResNet()
    params = read_dlib_resnet_params(path)
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in params.items()}
    model.load_state_dict(state, strict=True)
    return model.eval()


# --- registry ------------------------------------------------------------------------------------------------------


def pretrained_dlib_resnet() -> DlibResNet:
    """The dlib ResNet with dlib's weights, converted once from the ``.dat`` file and cached as safetensors."""
    import hashlib

    from safetensors.torch import load_file, save_file

    from maskface.io.files import atomic_write_bytes
    from maskface.io.locations import RESNET, cache_dir, dlib_model_path

    dat = dlib_model_path(RESNET)
    digest = hashlib.sha256(dat.read_bytes()).hexdigest()[:16]
    cached = cache_dir() / f"dlib_resnet_v1-{digest}.safetensors"
    model = DlibResNet()
    if cached.is_file():
        model.load_state_dict(load_file(str(cached)))
        return model.eval()
    model = load_dlib_resnet(dat)
    tmp = cached.with_suffix(".tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    atomic_write_bytes(cached, tmp.read_bytes())
    tmp.unlink()
    return model


@register_model(
    "dlib_resnet_v1",
    "dlib's face-recognition ResNet (29 conv layers, 128-d, 99.38% LFW by its author); the teacher",
    chip="dlib", size=150, padding=0.25, metric="euclidean", threshold=0.6, embedding_size=128,
    license="CC0-1.0 (Davis King's dlib-models)",
)
def dlib_resnet_v1(pretrained: bool = False, checkpoint: str | Path | None = None) -> DlibResNet:
    """``checkpoint`` may name another ``.dat`` file of the same network, or a ``.safetensors`` file of its
    weights (a student exported by ``maskface train distill``)."""
    if checkpoint is not None and str(checkpoint).endswith(".safetensors"):
        from maskface.models.weights import load_state, load_state_into

        model = DlibResNet()
        load_state_into(model, load_state(checkpoint), checkpoint)
        return model.eval()
    if checkpoint is not None:
        return load_dlib_resnet(checkpoint)
    return pretrained_dlib_resnet() if pretrained else DlibResNet()
