"""insightface's IResNet backbones (18/34/50/100), with the same state-dict layout as their ``backbone.pth`` files.

Input: 112x112 ArcFace chips, RGB, scaled to [-1, 1] inside the module; output: 512-d embeddings (cosine metric).
No weights ship with maskface: pass ``checkpoint=PATH`` to load an insightface ``.pth``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from maskface.errors import ModelFileError
from maskface.models.registry import register_model

DEPTHS = {"iresnet18": (2, 2, 2, 2), "iresnet34": (3, 4, 6, 3), "iresnet50": (3, 4, 14, 3),
          "iresnet100": (3, 13, 30, 3)}


class IBasicBlock(nn.Module):
    """BN - conv3x3 - BN - PReLU - conv3x3(stride) - BN, plus the (projected) input."""

    def __init__(self, in_channels: int, channels: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels, eps=1e-5)
        self.conv1 = nn.Conv2d(in_channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels, eps=1e-5)
        self.prelu = nn.PReLU(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels, eps=1e-5)
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride, bias=False),
                                            nn.BatchNorm2d(channels, eps=1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + (x if self.downsample is None else self.downsample(x))


class IResNet(nn.Module):
    """The IResNet trunk with its BN-dropout-FC-BN embedding head; takes uint8-range RGB NCHW floats."""

    input_size = 112

    def __init__(self, depths: tuple[int, int, int, int], embedding_size: int = 512):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
        self.prelu = nn.PReLU(64)
        in_channels = 64
        for index, (count, channels) in enumerate(zip(depths, (64, 128, 256, 512)), start=1):
            blocks = [IBasicBlock(in_channels, channels, 2)]
            blocks += [IBasicBlock(channels, channels, 1) for _ in range(count - 1)]
            setattr(self, f"layer{index}", nn.Sequential(*blocks))
            in_channels = channels
        self.bn2 = nn.BatchNorm2d(512, eps=1e-5)
        self.dropout = nn.Dropout(0.0)
        self.fc = nn.Linear(512 * 7 * 7, embedding_size)
        self.features = nn.BatchNorm1d(embedding_size, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - 127.5) / 127.5
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(torch.flatten(self.bn2(x), 1))
        return self.features(self.fc(x))


def load_insightface_checkpoint(model: IResNet, checkpoint: str | Path) -> IResNet:
    """Load an insightface ``backbone.pth`` (a plain state dict, possibly wrapped or ``module.``-prefixed), with
    ``weights_only=True``: a crafted pickle is refused, never run."""
    from maskface.models.weights import load_state_into, torch_load_safely

    path = Path(checkpoint)
    state = torch_load_safely(path)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelFileError(str(path), f"not a state dict: the file holds a {type(state).__name__}")
    for key, value in state.items():
        if not (isinstance(key, str) and isinstance(value, torch.Tensor)):
            raise ModelFileError(str(path), f"not a state dict of tensors: {key!r} holds a {type(value).__name__}")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    try:
        load_state_into(model, state, path)
    except ModelFileError as exc:
        raise ModelFileError(str(path), f"not an IResNet checkpoint of this depth ({exc.reason})") from None
    return model.eval()


def _factory(name: str):
    def build(pretrained: bool = False, checkpoint: str | Path | None = None) -> IResNet:
        model = IResNet(DEPTHS[name])
        if checkpoint is not None:
            return load_insightface_checkpoint(model, checkpoint)
        if pretrained:
            raise ModelFileError(name, "no weights ship with maskface; give an insightface checkpoint, "
                                       f"e.g. --model {name}=backbone.pth")
        return model

    return build


for _name in DEPTHS:
    register_model(_name, f"insightface {_name} backbone (512-d, ArcFace 112x112 chips); bring your own .pth",
                   chip="arcface", size=112, padding=0.0, metric="cosine", threshold=0.3,
                   embedding_size=512, license="MIT (maskface code); no weights ship")(_factory(_name))
