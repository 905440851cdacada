"""RetinaFace with a MobileNet-0.25 backbone (biubug6's PyTorch model, MIT, trained on WIDER FACE), rebuilt as
maskface's own module from the shipped state dict: the high-recall, slow detector (``detector="retinaface"``).

The network: a MobileNet-0.25 body whose three stages (strides 8, 16, 32) feed a small feature pyramid, an SSH
context module per level, and per level 1x1-convolution heads for face scores, box offsets and five landmark
offsets over two square prior anchors per cell. Module and parameter names follow the state dict's keys, so it
loads with ``strict=True``. As in the code the weights were trained with (biubug6/Face-Detector-1MB-with-landmark,
``models/net.py`` and ``data/config.py``): plain ReLU activations, and prior anchor sizes 10-20, 32-64 and 128-256
pixels; Pytorch_Retinaface's leaky ReLU and 16-512 anchors put the landmarks 0.4-1.5 inter-ocular distances off on
LFW with these weights, these 0.07. Input as in the original: BGR, 0-255, minus the channel means (104, 117, 123).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from maskface.face.detect import Detection
from maskface.face.yunet import detection_scale
from maskface.io.locations import shipped_weights

RETINAFACE_FILE = "retinaface_mnet025/mobilenet0.25_Final.pth"

#: BGR means subtracted from the input (the original's preprocessing).
BGR_MEANS = (104.0, 117.0, 123.0)
#: Prior anchors: the stride of each pyramid level and the square anchor sides (pixels) at each level.
STEPS = (8, 16, 32)
MIN_SIZES = ((10, 20), (32, 64), (128, 256))
#: Box encoding variances (centre offsets, log sizes).
VARIANCES = (0.1, 0.2)
#: Default score threshold and non-maximum-suppression overlap (the original demo's 0.6 and 0.4).
RETINAFACE_THRESHOLD = 0.6
RETINAFACE_NMS_THRESHOLD = 0.4


def _conv_bn(inp: int, out: int, stride: int = 1, relu: bool = True, kernel: int = 3, groups: int = 1) -> nn.Sequential:
    """Convolution (no bias), batch norm and, with ``relu``, a ReLU."""
    layers = [nn.Conv2d(inp, out, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(out)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _depthwise_separable(inp: int, out: int, stride: int) -> nn.Sequential:
    """3x3 depthwise then 1x1 pointwise convolution, each with batch norm and a ReLU."""
    return nn.Sequential(*_conv_bn(inp, inp, stride, groups=inp), *_conv_bn(inp, out, kernel=1))


class MobileNet025(nn.Module):
    """The backbone: MobileNet V1 at width 0.25, returning its stride-8, -16 and -32 feature maps."""

    def __init__(self):
        super().__init__()
        self.stage1 = nn.Sequential(_conv_bn(3, 8, 2), _depthwise_separable(8, 16, 1),
                                    _depthwise_separable(16, 32, 2), _depthwise_separable(32, 32, 1),
                                    _depthwise_separable(32, 64, 2), _depthwise_separable(64, 64, 1))
        self.stage2 = nn.Sequential(_depthwise_separable(64, 128, 2),
                                    *[_depthwise_separable(128, 128, 1) for _ in range(5)])
        self.stage3 = nn.Sequential(_depthwise_separable(128, 256, 2), _depthwise_separable(256, 256, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        c1 = self.stage1(x)
        c2 = self.stage2(c1)
        return [c1, c2, self.stage3(c2)]


class FeaturePyramid(nn.Module):
    """Top-down pyramid: 1x1 lateral projections to 64 channels, nearest upsampling, a 3x3 merge per level."""

    def __init__(self, in_channels: tuple[int, int, int] = (64, 128, 256), out: int = 64):
        super().__init__()
        self.output1, self.output2, self.output3 = (_conv_bn(c, out, kernel=1) for c in in_channels)
        self.merge1 = _conv_bn(out, out)
        self.merge2 = _conv_bn(out, out)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        out1, out2, out3 = self.output1(features[0]), self.output2(features[1]), self.output3(features[2])
        out2 = self.merge2(out2 + F.interpolate(out3, size=out2.shape[2:], mode="nearest"))
        out1 = self.merge1(out1 + F.interpolate(out2, size=out1.shape[2:], mode="nearest"))
        return [out1, out2, out3]


class ContextModule(nn.Module):
    """SSH context module: 3x3, 5x5 and 7x7 receptive fields (stacked 3x3 convolutions), concatenated, ReLU."""

    def __init__(self, inp: int = 64, out: int = 64):
        super().__init__()
        self.conv3X3 = _conv_bn(inp, out // 2, relu=False)
        self.conv5X5_1 = _conv_bn(inp, out // 4)
        self.conv5X5_2 = _conv_bn(out // 4, out // 4, relu=False)
        self.conv7X7_2 = _conv_bn(out // 4, out // 4)
        self.conv7x7_3 = _conv_bn(out // 4, out // 4, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch5 = self.conv5X5_1(x)
        branch7 = self.conv7x7_3(self.conv7X7_2(branch5))
        return F.relu(torch.cat([self.conv3X3(x), self.conv5X5_2(branch5), branch7], dim=1))


class Head(nn.Module):
    """A 1x1 convolution giving ``values`` numbers per anchor, reshaped to ``(batch, cells * anchors, values)``."""

    def __init__(self, values: int, inp: int = 64, anchors: int = 2):
        super().__init__()
        self.values = values
        self.conv1x1 = nn.Conv2d(inp, anchors * values, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1x1(x).permute(0, 2, 3, 1)
        return out.reshape(out.shape[0], -1, self.values)


class RetinaFaceNet(nn.Module):
    """RetinaFace MobileNet-0.25: ``(B, 3, H, W)`` mean-subtracted BGR -> box offsets ``(B, N, 4)``, face
    probabilities ``(B, N)`` and landmark offsets ``(B, N, 10)`` over the N priors of :func:`prior_boxes`."""

    def __init__(self):
        super().__init__()
        self.body = MobileNet025()
        self.fpn = FeaturePyramid()
        self.ssh1, self.ssh2, self.ssh3 = ContextModule(), ContextModule(), ContextModule()
        self.ClassHead = nn.ModuleList(Head(2) for _ in STEPS)
        self.BboxHead = nn.ModuleList(Head(4) for _ in STEPS)
        self.LandmarkHead = nn.ModuleList(Head(10) for _ in STEPS)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pyramid = self.fpn(self.body(x))
        features = [self.ssh1(pyramid[0]), self.ssh2(pyramid[1]), self.ssh3(pyramid[2])]
        boxes = torch.cat([head(f) for head, f in zip(self.BboxHead, features)], dim=1)
        scores = torch.cat([head(f) for head, f in zip(self.ClassHead, features)], dim=1).softmax(-1)[..., 1]
        points = torch.cat([head(f) for head, f in zip(self.LandmarkHead, features)], dim=1)
        return boxes, scores, points


def prior_boxes(height: int, width: int) -> torch.Tensor:
    """The ``(N, 4)`` prior anchors (centre x, centre y, width, height, as fractions of the image) in the heads'
    order: per level, per cell row by row, per anchor size."""
    priors = []
    for step, sizes in zip(STEPS, MIN_SIZES):
        rows, cols = -(-height // step), -(-width // step)
        cy, cx = torch.meshgrid((torch.arange(rows) + 0.5) * step / height,
                                (torch.arange(cols) + 0.5) * step / width, indexing="ij")
        for_cells = [torch.stack([cx, cy, torch.full_like(cx, s / width), torch.full_like(cy, s / height)], -1)
                     for s in sizes]
        priors.append(torch.stack(for_cells, dim=2).reshape(-1, 4))
    return torch.cat(priors)


def decode(boxes: torch.Tensor, points: torch.Tensor, priors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes ``(N, 4)`` as (left, top, right, bottom) and points ``(N, 5, 2)``, as fractions of the image."""
    centre = priors[:, :2] + boxes[:, :2] * VARIANCES[0] * priors[:, 2:]
    size = priors[:, 2:] * torch.exp(boxes[:, 2:] * VARIANCES[1])
    corners = torch.cat([centre - size / 2, centre + size / 2], dim=1)
    landmarks = priors[:, None, :2] + points.reshape(-1, 5, 2) * VARIANCES[0] * priors[:, None, 2:]
    return corners, landmarks


def non_maximum_suppression(boxes: np.ndarray, scores: np.ndarray, overlap: float) -> list[int]:
    """Indices of the boxes kept by greedy NMS: highest score first, dropping boxes whose intersection over union
    with a kept box exceeds ``overlap``."""
    order = np.argsort(-scores, kind="stable")
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        lo = np.maximum(boxes[best, :2], boxes[rest, :2])
        hi = np.minimum(boxes[best, 2:], boxes[rest, 2:])
        inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
        iou = inter / (area[best] + area[rest] - inter)
        order = rest[iou <= overlap]
    return keep


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@cache
def shipped_retinaface(device: str) -> RetinaFaceNet:
    """The shipped network on ``device``, in eval mode (loaded once per process and device)."""
    state = torch.load(shipped_weights(RETINAFACE_FILE), map_location="cpu", weights_only=True)
    net = RetinaFaceNet()
    net.load_state_dict(state)
    return net.eval().to(device)


class RetinaFaceDetector:
    """Faces with boxes, scores and five landmarks (:attr:`Detection.points`) from RetinaFace MobileNet-0.25.

    Images are searched at their own size (enlarged when tiny, reduced beyond ``DETECT_MAX_SIDE``, as YuNet's);
    each ``upsample`` step above the configured one doubles the size. The device is CUDA when present.
    """

    name = "retinaface"

    def __init__(self, upsample: int = 1, threshold: float = RETINAFACE_THRESHOLD,
                 nms_threshold: float = RETINAFACE_NMS_THRESHOLD, device: str | torch.device | None = None):
        self.upsample = upsample
        self.threshold = threshold
        self.nms_threshold = nms_threshold
        self.device = torch.device(device) if device is not None else pick_device()
        self.net = shipped_retinaface(str(self.device))

    @torch.inference_mode()
    def __call__(self, image: np.ndarray, upsample: int | None = None) -> list[Detection]:
        extra = 0 if upsample is None else upsample - self.upsample
        scale = detection_scale(image.shape, 2.0**extra)
        height, width = image.shape[:2]
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        pixels = torch.from_numpy(np.ascontiguousarray(image[..., ::-1])).to(self.device)  # RGB -> BGR
        x = pixels.permute(2, 0, 1)[None].float() - torch.tensor(BGR_MEANS, device=self.device)[:, None, None]
        if size != (width, height):
            x = F.interpolate(x, size=(size[1], size[0]), mode="bilinear", align_corners=False,
                              antialias=scale < 1)
        offsets, scores, point_offsets = self.net(x)
        keep = scores[0] >= self.threshold
        if not bool(keep.any()):
            return []
        priors = prior_boxes(size[1], size[0]).to(self.device)[keep]
        boxes, points = decode(offsets[0][keep], point_offsets[0][keep], priors)
        boxes = (boxes * torch.tensor([width, height, width, height], device=self.device)).double().cpu().numpy()
        points = (points * torch.tensor([width, height], device=self.device)).double().cpu().numpy()
        kept_scores = scores[0][keep].double().cpu().numpy()
        name = f"{self.name}+{extra}" if extra else self.name
        return [Detection(tuple(boxes[i]), float(kept_scores[i]), name, points[i])
                for i in non_maximum_suppression(boxes, kept_scores, self.nms_threshold)]
