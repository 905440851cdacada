"""SFace (OpenCV Zoo's ``face_recognition_sface_2021dec``) as a PyTorch module, rebuilt from its int8 ONNX file.

The shipped graph (an insightface-style MXNet export) is a MobileNet-v1 body and insightface's "E" embedding head:
a 3x3 stem, 13 depthwise-separable blocks (four of them downsampling, 112 -> 7 pixels), every convolution followed
by batch norm and PReLU; then batch norm, dropout, a fully connected layer over the 1024 x 7 x 7 feature map and a
final batch norm, giving 128-d embeddings compared by cosine. Its weights ship as int8 blocks with float scales;
:mod:`maskface.models.onnx_graph` dequantises them and :func:`sface_state_dict` maps them onto this module.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from maskface.errors import ModelFileError
from maskface.models.onnx_graph import GraphNode, OnnxGraph, read_onnx_graph
from maskface.models.registry import register_model
from maskface.models.weights import load_state_into

#: The vendored file, inside the package (``maskface/weights/sface``).
SFACE_FILE = "sface/face_recognition_sface_2021dec_int8bq.onnx"

#: The graph's own input normalisation: ``(pixel - 127.5) * 0.0078125`` on RGB in [0, 255]. OpenCV's
#: ``FaceRecognizerSF.feature`` takes BGR chips but builds its blob with ``swapRB=true``, so the network sees RGB.
PIXEL_MEAN = 127.5
PIXEL_SCALE = 0.0078125

#: (in channels, out channels, stride of the depthwise 3x3) of each depthwise-separable block, in order.
BLOCKS = ((32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2),
          *[(512, 512, 1)] * 5, (512, 1024, 2), (1024, 1024, 1))

CONV_BN_EPS = 1e-3  # MXNet's default, as stored in the graph
HEAD_BN_EPS = 2e-5


class ConvUnit(nn.Module):
    """Convolution (no bias) - batch norm - PReLU: every convolution of the network is one of these."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=CONV_BN_EPS)
        self.prelu = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.prelu(self.bn(self.conv(x)))


class DepthwiseSeparable(nn.Module):
    """A depthwise 3x3 unit (which may downsample) then a pointwise 1x1 unit that changes the channel count."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.depthwise = ConvUnit(in_channels, in_channels, 3, stride, groups=in_channels)
        self.pointwise = ConvUnit(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class SFaceNet(nn.Module):
    """SFace's network. Input: ``N x 3 x 112 x 112`` float RGB in [0, 255] (ArcFace chips); output ``N x 128``."""

    input_size = 112

    def __init__(self, embedding_size: int = 128, dropout: float = 0.4):
        super().__init__()
        self.stem = ConvUnit(3, 32, 3)
        self.blocks = nn.Sequential(*[DepthwiseSeparable(i, o, s) for i, o, s in BLOCKS])
        channels, side = BLOCKS[-1][1], self.input_size // 16
        self.feature_bn = nn.BatchNorm2d(channels, eps=HEAD_BN_EPS)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels * side * side, embedding_size)
        self.embedding_bn: nn.Module = nn.BatchNorm1d(embedding_size, eps=HEAD_BN_EPS)

    def conv_units(self) -> list[ConvUnit]:
        """Every conv unit in the order data flows through them (the order of the ONNX graph)."""
        return [m for m in self.modules() if isinstance(m, ConvUnit)]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The 1024 x 7 x 7 feature map, after the graph's preprocessing ``(x - 127.5) * 0.0078125``."""
        x = (x - PIXEL_MEAN) * PIXEL_SCALE
        return self.feature_bn(self.blocks(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding_bn(self.fc(self.dropout(self.features(x)).flatten(1)))

    def fused(self) -> SFaceNet:
        """An inference copy with each batch norm after a convolution or the linear layer folded into it: the same
        embeddings up to float rounding, fewer passes over memory. Not for training."""
        model = copy.deepcopy(self).eval()
        with torch.no_grad():
            for unit in model.conv_units():
                unit.conv = fuse_conv_bn_eval(unit.conv, unit.bn)
                unit.bn = nn.Identity()
            model.fc = fuse_linear_bn_eval(model.fc, model.embedding_bn)
            model.embedding_bn = nn.Identity()
        return model


# --- weights from the ONNX graph ---------------------------------------------------------------------------------


def _expect(ok: bool, path: str, reason: str) -> None:
    if not ok:
        raise ModelFileError(path, f"not the SFace graph: {reason}")


def _batch_norm(graph: OnnxGraph, node: GraphNode, prefix: str, eps: float, path: str) -> dict[str, np.ndarray]:
    _expect(abs(node.attributes.get("epsilon", 1e-5) - eps) < eps * 1e-3, path,
            f"{node.outputs[0]} has epsilon {node.attributes.get('epsilon')}, expected {eps}")
    gamma, beta, mean, var = (graph.constant(name) for name in node.inputs[1:5])
    return {f"{prefix}.weight": gamma, f"{prefix}.bias": beta, f"{prefix}.running_mean": mean,
            f"{prefix}.running_var": var}


def _conv_unit(graph: OnnxGraph, nodes: list[GraphNode], unit: ConvUnit, prefix: str,
               path: str) -> dict[str, np.ndarray]:
    conv, bn, prelu = nodes
    a, c = conv.attributes, unit.conv
    geometry = (list(a.get("strides", [1, 1])), list(a.get("pads", [0] * 4)), a.get("group", 1))
    wanted = (list(c.stride), list(c.padding) * 2, c.groups)
    _expect(geometry == wanted, path, f"{conv.outputs[0]} has strides, pads, group {geometry}, expected {wanted}")
    _expect(len(conv.inputs) == 2, path, f"{conv.outputs[0]} has a bias")
    params = {f"{prefix}.conv.weight": graph.constant(conv.inputs[1])}
    params |= _batch_norm(graph, bn, f"{prefix}.bn", CONV_BN_EPS, path)
    params[f"{prefix}.prelu.weight"] = graph.constant(prelu.inputs[1]).reshape(-1)
    return params


def sface_state_dict(graph: OnnxGraph, model: SFaceNet, path: str = "<graph>") -> dict[str, torch.Tensor]:
    """Map the (dequantised) constants of SFace's ONNX graph onto ``model``'s parameter names, checking that the
    graph is the network the module describes: operator sequence, convolution geometry, normalisation."""
    nodes = [n for n in graph.nodes if n.op_type not in ("Dropout", "Flatten")]
    units = model.conv_units()
    expected = ["Sub", "Mul"] + ["Conv", "BatchNormalization", "PRelu"] * len(units) + [
        "BatchNormalization", "Gemm", "BatchNormalization"]
    _expect([n.op_type for n in nodes] == expected, path, "unexpected sequence of operators")
    sub, mul = nodes[:2]
    _expect(np.allclose(graph.constant(sub.inputs[1]), PIXEL_MEAN)
            and np.allclose(graph.constant(mul.inputs[1]), PIXEL_SCALE), path, "unexpected input normalisation")
    names = {id(m): name for name, m in model.named_modules()}
    params: dict[str, np.ndarray] = {}
    for i, unit in enumerate(units):
        params |= _conv_unit(graph, nodes[2 + 3 * i : 5 + 3 * i], unit, names[id(unit)], path)
    feature_bn, gemm, embedding_bn = nodes[-3:]
    _expect(gemm.attributes.get("transB", 0) == 1 and gemm.attributes.get("alpha", 1.0) == 1.0, path,
            "the fully connected layer is not y = x W^T + b")
    params |= _batch_norm(graph, feature_bn, "feature_bn", HEAD_BN_EPS, path)
    params |= {"fc.weight": graph.constant(gemm.inputs[1]), "fc.bias": graph.constant(gemm.inputs[2])}
    params |= _batch_norm(graph, embedding_bn, "embedding_bn", HEAD_BN_EPS, path)
    return {k: torch.from_numpy(np.ascontiguousarray(v, np.float32)) for k, v in params.items()}


def load_sface_onnx(path: str | Path) -> SFaceNet:
    """Build :class:`SFaceNet` with the weights of SFace's ONNX file (int8 blocks dequantised to float32)."""
    model = SFaceNet()
    state = sface_state_dict(read_onnx_graph(path), model, str(path))
    state |= {k: v for k, v in model.state_dict().items() if k.endswith("num_batches_tracked")}
    load_state_into(model, state, path)
    return model.eval()


# --- registry ------------------------------------------------------------------------------------------------------


#: Provisional cosine threshold: the middle of the accuracy plateau (0.33-0.35, 99.3 %) on LFW View 1's 3,200 pairs
#: (DevTrain + DevTest), YuNet-aligned chips. OpenCV's documented 0.363 scores 99.25 % there.
SFACE_THRESHOLD = 0.34


@register_model(
    "sface",
    "SFace (OpenCV Zoo, Apache-2.0): MobileNet with a 128-d head, rebuilt from its int8 ONNX; 99.4 % LFW by the zoo",
    chip="arcface", size=112, padding=0.0, metric="cosine", threshold=SFACE_THRESHOLD, embedding_size=128,
    license="Apache-2.0 (OpenCV Zoo)",
)
def sface(pretrained: bool = False, checkpoint: str | Path | None = None) -> SFaceNet:
    """``pretrained`` loads the vendored ONNX file; ``checkpoint`` may name another ONNX file of the same network or a
    ``.safetensors`` file of this module's weights (e.g. a fine-tuned student)."""
    if checkpoint is not None and str(checkpoint).endswith(".safetensors"):
        from maskface.models.weights import load_state

        model = SFaceNet()
        load_state_into(model, load_state(checkpoint), checkpoint)
        return model.eval()
    if checkpoint is not None:
        return load_sface_onnx(checkpoint)
    if pretrained:
        from maskface.io.locations import shipped_weights

        return load_sface_onnx(shipped_weights(SFACE_FILE))
    return SFaceNet()
