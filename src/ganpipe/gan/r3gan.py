"""R3GAN's generator and discriminator (Huang, Gokaslan, Kuleshov, Tompkin: "The GAN is dead; long live the GAN!
A Modern Baseline GAN", NeurIPS 2024), the paper's final configuration, in plain PyTorch with no compiled ops.

Both networks are stages of residual blocks with no normalisation layer. A block is 1x1 conv -> bias + leaky
ReLU -> grouped kxk conv -> bias + leaky ReLU -> 1x1 conv, added to its input; its middle width is the stage's
width times model.expansion, in model.cardinality groups. Weights are drawn with variance scaling (N(0, gain^2 /
fan_in)), each block's gain shrunk by the number of blocks L as L^(-1/4) and its last conv started at zero, so
the whole network starts as its skip path. Resolution changes by interpolation with a [1, 3, 3, 1] low-pass
filter (transposed for up, strided for down), with a 1x1 conv where the width changes.

G: z (and a class embedding) -> a learned 4x4 basis scaled per channel by a linear map -> one stage per
model.g_hidden width, doubling the side from the second stage on -> a 1x1 conv to the image channels. No tanh:
R3GAN's G is unbounded (images are clamped to [-1, 1] when converted to uint8).
D: a 1x1 conv from the image channels -> one stage per model.d_hidden width, halving the side after each but the
last -> a depthwise 4x4 basis and a linear map to one logit, or, when conditional, to an embedding projected onto
the class's (as in the official code, not the projection head the other architectures use).

Per-stage blocks and cardinality are model.blocks and model.cardinality, listed from G's 4x4 stage up; D uses
them mirrored (its first stage is the full-resolution one), as the official presets do.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganpipe.errors import ConfigError
from ganpipe.params.config import ModelConfig

ImageShape = tuple[int, int, int]
SLOPE = 0.2
LRELU_GAIN = math.sqrt(2 / (1 + SLOPE**2))  # keeps the activations' second moment through a leaky ReLU
FILTER = (1, 2, 1)  # the official code's resampling filter; convolved with [1, 1] it is the [1, 3, 3, 1] kernel


def variance_scaled(layer: nn.Module, gain: float = 1.0) -> nn.Module:
    """N(0, gain^2 / fan_in) weights and zero biases (the paper's initialisation; gain 0 starts a layer at 0)."""
    fan_in = layer.weight[0].numel()  # in_channels / groups * k * k for a conv, in_features for a linear
    with torch.no_grad():
        layer.weight.normal_(0.0, gain / math.sqrt(fan_in))
        if getattr(layer, "bias", None) is not None:
            layer.bias.zero_()
    return layer


def conv(c_in: int, c_out: int, k: int, groups: int = 1, gain: float = 1.0) -> nn.Conv2d:
    return variance_scaled(nn.Conv2d(c_in, c_out, k, padding=(k - 1) // 2, groups=groups, bias=False), gain)


class BiasedActivation(nn.Module):
    """x + bias, then leaky ReLU (0.2); the bias lives here because the convs have none."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1, 1, 1) if x.ndim == 4 else (1, -1)
        return F.leaky_relu(x + self.bias.to(x.dtype).view(shape), SLOPE)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, cardinality: int, expansion: int, kernel: int, total_blocks: int):
        super().__init__()
        wide = channels * expansion
        gain = LRELU_GAIN * total_blocks ** (-1 / (2 * 3 - 2))  # 3 linear layers per block
        self.expand = conv(channels, wide, 1, gain=gain)
        self.act1 = BiasedActivation(wide)
        self.grouped = conv(wide, wide, kernel, groups=cardinality, gain=gain)
        self.act2 = BiasedActivation(wide)
        self.project = conv(wide, channels, 1, gain=0.0)  # the block starts as the identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.project(self.act2(self.grouped(self.act1(self.expand(x)))))


def lowpass_kernel(taps: tuple[int, ...] = FILTER) -> torch.Tensor:
    """The separable 2-D low-pass kernel of the interpolating resamplers, summing to 1: [1,3,3,1]^T [1,3,3,1] / 64."""
    k = torch.tensor(taps, dtype=torch.float64)
    k = torch.cat([k, torch.zeros(1, dtype=k.dtype)]) + torch.cat([torch.zeros(1, dtype=k.dtype), k])
    kernel = torch.outer(k, k)
    return (kernel / kernel.sum()).float()


class Resample(nn.Module):
    """2x up (transposed conv with 4x the kernel, so a constant image stays constant) or 2x down (strided conv),
    each channel on its own, with a 1x1 conv to the new width where it changes (before up, after down)."""

    def __init__(self, c_in: int, c_out: int, up: bool):
        super().__init__()
        self.up = up
        self.register_buffer("kernel", lowpass_kernel()[None, None], persistent=False)
        self.pad = len(FILTER) // 2
        self.linear = conv(c_in, c_out, 1) if c_in != c_out else None

    def _filter(self, x: torch.Tensor) -> torch.Tensor:
        # a depthwise conv (one group per channel): the official code's per-channel filter without reshaping
        # to [B*C, 1, H, W], which would copy a channels-last tensor on every call
        C = x.shape[1]
        k = self.kernel.to(x.dtype).expand(C, 1, -1, -1)
        if self.up:
            return F.conv_transpose2d(x, 4 * k, stride=2, padding=self.pad, groups=C)
        return F.conv2d(x, k, stride=2, padding=self.pad, groups=C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.up:
            return self._filter(self.linear(x) if self.linear is not None else x)
        x = self._filter(x)
        return self.linear(x) if self.linear is not None else x


class GenerativeBasis(nn.Module):
    """A learned [C, 4, 4] basis, each channel scaled by a linear map of the input vector."""

    def __init__(self, in_dim: int, channels: int):
        super().__init__()
        self.basis = nn.Parameter(torch.randn(channels, 4, 4))
        self.linear = variance_scaled(nn.Linear(in_dim, channels, bias=False))

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.basis[None].to(v.dtype) * self.linear(v)[:, :, None, None]


class DiscriminativeBasis(nn.Module):
    """A depthwise 4x4 conv over the whole 4x4 map (a learned basis per channel), then a linear map."""

    def __init__(self, channels: int, out_dim: int):
        super().__init__()
        self.basis = variance_scaled(nn.Conv2d(channels, channels, 4, groups=channels, bias=False))
        self.linear = variance_scaled(nn.Linear(channels, out_dim, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.basis(x).flatten(1))


def check_fits(cfg: ModelConfig, shape: ImageShape) -> None:
    """One clear line when the stages cannot make these images: the side must be 4 * 2^(stages - 1)."""
    _, h, w = shape
    stages = len(cfg.g_hidden)
    if h != w or h != 4 * 2 ** (stages - 1):
        fits = {4 * 2**(n - 1): n for n in range(3, 8)}
        hint = f"{fits[h]} stages for {h}x{h}" if h == w and h in fits else "square images of 16, 32, 64, 128 or 256 px"
        raise ConfigError(f"model.arch r3gan with {stages} stages (model.g_hidden) makes {4 * 2 ** (stages - 1)}px "
                          f"images, not {h}x{w}: use {hint}, or set data.image_size (e.g. 32 for 28x28 digits)")


class R3GANGenerator(nn.Module):
    def __init__(self, cfg: ModelConfig, shape: ImageShape, num_classes: int):
        super().__init__()
        check_fits(cfg, shape)
        total = sum(cfg.blocks)
        widths = cfg.g_hidden
        self.embed = variance_scaled(nn.Linear(num_classes, cfg.embed_dim, bias=False)) if cfg.conditional else None
        self.num_classes = num_classes
        in_dim = cfg.z_dim + (cfg.embed_dim if cfg.conditional else 0)
        stages = []
        for i, width in enumerate(widths):
            first = GenerativeBasis(in_dim, width) if i == 0 else Resample(widths[i - 1], width, up=True)
            blocks = [ResidualBlock(width, cfg.cardinality[i], cfg.expansion, 3, total) for _ in range(cfg.blocks[i])]
            stages.append(nn.Sequential(first, *blocks))
        self.stages = nn.ModuleList(stages)
        self.out = conv(widths[-1], shape[0], 1)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            if y is None:
                raise ValueError("a conditional generator needs class labels")
            z = torch.cat([z, self.embed(F.one_hot(y, self.num_classes).to(z.dtype))], dim=1)
        h = z
        for stage in self.stages:
            h = stage(h)
        return self.out(h)  # [B, C, H, W], unbounded (about [-1, 1] once trained)


class R3GANDiscriminator(nn.Module):
    def __init__(self, cfg: ModelConfig, shape: ImageShape, num_classes: int):
        super().__init__()
        check_fits(cfg, shape)
        if len(cfg.d_hidden) != len(cfg.g_hidden):
            raise ConfigError(f"model.arch r3gan needs as many D stages as G stages: model.d_hidden has "
                              f"{len(cfg.d_hidden)} widths, model.g_hidden {len(cfg.g_hidden)}")
        total = sum(cfg.blocks)
        widths, blocks, groups = cfg.d_hidden, cfg.blocks[::-1], cfg.cardinality[::-1]  # D runs high res -> 4x4
        self.num_classes = num_classes
        self.extract = conv(shape[0], widths[0], 1)
        stages = []
        for i, width in enumerate(widths):
            body = [ResidualBlock(width, groups[i], cfg.expansion, 3, total) for _ in range(blocks[i])]
            last = i == len(widths) - 1
            out_dim = widths[-1] if cfg.conditional else 1  # the official code: embedding width = D's last width
            body.append(DiscriminativeBasis(width, out_dim) if last else Resample(width, widths[i + 1], up=False))
            stages.append(nn.Sequential(*body))
        self.stages = nn.ModuleList(stages)
        self.embed = variance_scaled(nn.Linear(num_classes, widths[-1], bias=False), 1 / math.sqrt(widths[-1])) \
            if cfg.conditional else None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.extract(x)
        for stage in self.stages:
            h = stage(h)
        if self.embed is not None:
            if y is None:
                raise ValueError("a conditional discriminator needs class labels")
            h = (h * self.embed(F.one_hot(y, self.num_classes).to(h.dtype))).sum(dim=1, keepdim=True)
        return h.flatten()  # [B] raw logits
