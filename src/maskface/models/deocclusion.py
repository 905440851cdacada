"""De-occlusion networks: a gated-convolution generator that completes the masked part of a face chip, the two
discriminators that train it, and a small segmentation net that estimates the occlusion map of a chip.

Images are ``N x 3 x H x W`` floats in [0, 1] and maps ``N x 1 x H x W`` in [0, 1] (1 = hidden), at the dlib chip
resolution (150). The generator sees ``x * (1 - m)`` and ``m`` and returns a full image; :func:`composite` keeps the
visible pixels: ``x_hat = x * (1 - m) + G(x * (1 - m), m) * m``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm


@dataclass
class GeneratorConfig:
    """Widths of the generator; ``width`` is the channels at half resolution (x2 at quarter resolution)."""

    width: int = 32
    dilations: tuple[int, ...] = (2, 4, 8, 1)
    #: give the generator the mean training chip as a prior (an input channel set): aligned chips put nose and
    #: mouth in nearly fixed places, so a face-shaped starting point beats filling rows from the cheeks
    mean_face_prior: bool = True
    size: int = 150


@dataclass
class EstimatorConfig:
    """Widths of the occlusion estimator (channels at half resolution; x2 and x4 deeper)."""

    width: int = 16


class GatedConv(nn.Module):
    """``ELU(features) * sigmoid(gate)`` from one convolution (Yu et al., free-form inpainting)."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, 2 * cout, kernel, stride, padding=dilation * (kernel - 1) // 2, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, gate = self.conv(x).chunk(2, dim=1)
        return F.elu(features) * torch.sigmoid(gate)


class Generator(nn.Module):
    """Encoder (150 -> 75 -> 38) - dilated gated convolutions - decoder (38 -> 75 -> 150)."""

    def __init__(self, config: GeneratorConfig | None = None):
        super().__init__()
        self.config = config = config or GeneratorConfig()
        w = config.width
        if config.mean_face_prior:  # set from the training chips by the recipe; saved with the weights
            self.register_buffer("prior", torch.full((1, 3, config.size, config.size), 0.5))
        inputs = 8 if config.mean_face_prior else 5
        self.encoder = nn.Sequential(GatedConv(inputs, w, 5, stride=2), GatedConv(w, w), GatedConv(w, 2 * w, stride=2))
        self.middle = nn.Sequential(*[GatedConv(2 * w, 2 * w, dilation=d) for d in config.dilations])
        self.up1 = nn.Sequential(GatedConv(2 * w, w), GatedConv(w, w))
        self.up2 = nn.Sequential(GatedConv(w, w // 2), nn.Conv2d(w // 2, 3, 3, padding=1))

    def forward(self, image: torch.Tensor, occlusion: torch.Tensor) -> torch.Tensor:
        """``image``: the chip (hidden pixels are zeroed here); returns the generator's full image in [0, 1]."""
        visible = image * (1 - occlusion)
        x = torch.cat([visible * 2 - 1, occlusion, torch.ones_like(occlusion)], dim=1)
        if self.config.mean_face_prior:
            prior = F.interpolate(self.prior, size=image.shape[-2:], mode="bilinear", align_corners=False)
            x = torch.cat([x, prior.expand(len(image), -1, -1, -1) * 2 - 1], dim=1)
        size = image.shape[-2:]
        half = self.encoder[1](self.encoder[0](x))
        x = self.middle(self.encoder[2](half))
        x = self.up1(F.interpolate(x, size=half.shape[-2:], mode="nearest"))
        x = self.up2(F.interpolate(x, size=size, mode="nearest"))
        return (torch.tanh(x) + 1) / 2


def composite(image: torch.Tensor, generated: torch.Tensor, occlusion: torch.Tensor) -> torch.Tensor:
    """Visible pixels from the input, hidden ones from the generator."""
    return image * (1 - occlusion) + generated * occlusion


def _sn_conv(cin: int, cout: int, stride: int = 2) -> nn.Module:
    return nn.Sequential(spectral_norm(nn.Conv2d(cin, cout, 4, stride, padding=1)), nn.LeakyReLU(0.2))


class PatchDiscriminator(nn.Module):
    """A spectral-normalised patch discriminator on image + map (SN-PatchGAN); returns a grid of scores."""

    def __init__(self, width: int = 32, depth: int = 4):
        super().__init__()
        layers, cin = [], 4
        for i in range(depth):
            cout = width * 2 ** min(i, 2)
            layers.append(_sn_conv(cin, cout))
            cin = cout
        layers.append(spectral_norm(nn.Conv2d(cin, 1, 3, padding=1)))
        self.net = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor, occlusion: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([image * 2 - 1, occlusion], dim=1))


def mask_crops(images: torch.Tensor, occlusion: torch.Tensor, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Square crops around each map's bounding box, resized to ``size`` (differentiable in ``images``)."""
    crops, maps = [], []
    height, width = occlusion.shape[-2:]
    for image, hidden in zip(images, occlusion):
        rows = torch.nonzero(hidden[0].amax(dim=1) > 0.5).flatten()
        cols = torch.nonzero(hidden[0].amax(dim=0) > 0.5).flatten()
        if len(rows) == 0:  # no mask: the lower half of the face, where masks sit
            top, bottom, left, right = height // 2, height, width // 4, 3 * width // 4
        else:
            top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        side = max(bottom - top, right - left, 16)
        cy, cx = (top + bottom) // 2, (left + right) // 2
        top = min(max(cy - side // 2, 0), max(height - side, 0))
        left = min(max(cx - side // 2, 0), max(width - side, 0))
        window = (slice(None), slice(top, top + side), slice(left, left + side))
        crops.append(F.interpolate(image[window][None], size=(size, size), mode="bilinear", align_corners=False))
        maps.append(F.interpolate(hidden[window][None], size=(size, size), mode="nearest"))
    return torch.cat(crops), torch.cat(maps)


class OcclusionEstimator(nn.Module):
    """A small U-Net: chip in, occlusion logits out (same size); ``sigmoid > 0.5`` is the estimated map."""

    def __init__(self, config: EstimatorConfig | None = None):
        super().__init__()
        self.config = config = config or EstimatorConfig()
        w = config.width

        def block(cin, cout, stride=1):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, padding=1), nn.GroupNorm(4, cout), nn.ReLU())

        self.down1 = nn.Sequential(block(3, w, 2), block(w, w))  # 75
        self.down2 = nn.Sequential(block(w, 2 * w, 2), block(2 * w, 2 * w))  # 38
        self.down3 = nn.Sequential(block(2 * w, 4 * w, 2), block(4 * w, 4 * w))  # 19
        self.up2 = block(6 * w, 2 * w)
        self.up1 = block(3 * w, w)
        self.head = nn.Conv2d(w, 1, 3, padding=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        d1 = self.down1(image * 2 - 1)
        d2 = self.down2(d1)
        d3 = self.down3(d2)
        u2 = self.up2(torch.cat([F.interpolate(d3, size=d2.shape[-2:], mode="bilinear", align_corners=False), d2], 1))
        u1 = self.up1(torch.cat([F.interpolate(u2, size=d1.shape[-2:], mode="bilinear", align_corners=False), d1], 1))
        return F.interpolate(self.head(u1), size=image.shape[-2:], mode="bilinear", align_corners=False)


class Deoccluder(nn.Module):
    """Estimate each chip's occlusion map, then complete what it hides: ``chips -> (completed, map)``.

    A chip whose estimated map covers less than ``min_area`` of it counts as unmasked: its map is emptied and the
    chip passes unchanged. Otherwise the map is grown by ``dilate`` pixels so the generator also repaints the
    mask's soft edge.
    """

    def __init__(self, estimator: OcclusionEstimator, generator: Generator, threshold: float = 0.5, dilate: int = 2,
                 min_area: float = 0.05):
        super().__init__()
        self.estimator, self.generator = estimator, generator
        self.threshold, self.dilate, self.min_area = threshold, dilate, min_area

    def segment(self, images: torch.Tensor) -> torch.Tensor:
        """The estimator's own binary map (``N x 1 x H x W``): thresholded, no minimum area, no dilation."""
        return (torch.sigmoid(self.estimator(images)) > self.threshold).float()

    def estimate(self, images: torch.Tensor) -> torch.Tensor:
        """The binary occlusion map (``N x 1 x H x W``) of chips in [0, 1]; empty for chips judged unmasked."""
        occlusion = self.segment(images)
        masked = occlusion.mean(dim=(1, 2, 3), keepdim=True) >= self.min_area
        occlusion = occlusion * masked
        if self.dilate:
            occlusion = F.max_pool2d(occlusion, 2 * self.dilate + 1, stride=1, padding=self.dilate)
        return occlusion

    def forward(self, images: torch.Tensor, occlusion: torch.Tensor | None = None) -> tuple[torch.Tensor,
                                                                                          torch.Tensor]:
        if occlusion is None:
            occlusion = self.estimate(images)
        # Chips with an empty map pass unchanged, so the generator only runs on the others.
        todo = occlusion.flatten(1).amax(dim=1) > 0
        if todo.all():
            return composite(images, self.generator(images, occlusion), occlusion), occlusion
        completed = images.clone()
        if todo.any():
            completed[todo] = composite(images[todo], self.generator(images[todo], occlusion[todo]), occlusion[todo])
        return completed, occlusion


def chips_to_tensor(chips: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """``N x H x W x 3`` uint8 chips (NumPy) -> ``N x 3 x H x W`` floats in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(chips)).permute(0, 3, 1, 2).float().div(255).to(device)


def tensor_to_chips(images: torch.Tensor) -> np.ndarray:
    """``N x 3 x H x W`` floats in [0, 1] -> ``N x H x W x 3`` uint8 chips (NumPy)."""
    return (images.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()


@torch.inference_mode()
def complete_chips(deoccluder: Deoccluder, chips: np.ndarray, occlusion: np.ndarray | None = None,
                   batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Complete uint8 chips in batches: (completed uint8 chips, the bool maps used). ``occlusion``: known maps
    (``N x H x W`` bool); None estimates them."""
    device = next(deoccluder.parameters()).device
    done, used = [], []
    for start in range(0, len(chips), batch_size):
        x = chips_to_tensor(chips[start : start + batch_size], device)
        known = None
        if occlusion is not None:
            known = torch.from_numpy(np.asarray(occlusion[start : start + batch_size], np.float32)[:, None]).to(device)
        completed, maps = deoccluder(x, known)
        done.append(tensor_to_chips(completed))
        used.append(maps[:, 0].bool().cpu().numpy())
    return np.concatenate(done), np.concatenate(used)


GENERATOR_FILE = "deocclusion_generator_v1.safetensors"
ESTIMATOR_FILE = "occlusion_estimator_v1.safetensors"


def pretrained_deoccluder() -> Deoccluder:
    from maskface.io.locations import shipped_weights
    from maskface.models.weights import load_weights

    remedy = "reinstall maskface or train them (docs/models.md)"
    estimator = load_weights(shipped_weights(ESTIMATOR_FILE, remedy), OcclusionEstimator, EstimatorConfig)
    generator = load_weights(shipped_weights(GENERATOR_FILE, remedy), Generator, GeneratorConfig)
    return Deoccluder(estimator, generator).eval()


def trained_deoccluder(folder: str | Path) -> Deoccluder:
    """A de-occluder from a folder holding the exports of ``maskface train occlusion`` and ``train deocclusion``
    (``occlusion_estimator.safetensors``, ``deocclusion_generator.safetensors``)."""
    from maskface.models.weights import load_weights

    folder = Path(folder)
    estimator = load_weights(folder / "occlusion_estimator.safetensors", OcclusionEstimator, EstimatorConfig)
    generator = load_weights(folder / "deocclusion_generator.safetensors", Generator, GeneratorConfig)
    return Deoccluder(estimator, generator).eval()


def _register() -> None:
    from maskface.models.registry import register_model

    @register_model("deocclusion_v1", "occlusion estimator + gated-convolution generator that completes masked "
                    "face chips (150x150 dlib chips)", kind="deocclusion")
    def deocclusion_v1(pretrained: bool = False, generator: GeneratorConfig | None = None,
                       estimator: EstimatorConfig | None = None, checkpoint: str | Path | None = None) -> Deoccluder:
        """``checkpoint``: a folder with the two training exports (see :func:`trained_deoccluder`)."""
        if checkpoint is not None:
            return trained_deoccluder(checkpoint)
        if pretrained:
            return pretrained_deoccluder()
        return Deoccluder(OcclusionEstimator(estimator), Generator(generator))


_register()
