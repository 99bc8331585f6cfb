"""ResNet generator and discriminator in the style of SNGAN (Miyato et al. 2018), the architecture behind the
strong CIFAR-10 results of PyTorch-StudioGAN and mimicry.

G: z -> linear -> [g_hidden[0], s, s] -> one up-block per g_hidden width (BN, ReLU, 2x nearest upsample, 3x3
conv, BN, ReLU, 3x3 conv; 1x1-conv shortcut) -> BN, ReLU, 3x3 conv to the image channels, tanh. When
conditional, every BN is a conditional batch norm: its scale and shift come from a shared class embedding
(as in BigGAN), so the class steers every resolution, not only the input.

D: an input block (conv, act, conv, 2x2 average pool; pooled 1x1-conv shortcut), then one block per further
d_hidden width (act, conv, act, conv, pool while the map is larger than 8x8), act, a sum over positions, and the
projection head of models.py. Spectral norm on every D layer when model.d_spectral_norm.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganpipe.params.config import ModelConfig


def _act(name: str) -> nn.Module:
    return {"relu": nn.ReLU(), "leaky_relu": nn.LeakyReLU(0.2), "tanh": nn.Tanh()}[name]


class CondBatchNorm(nn.Module):
    """Batch norm whose affine scale and shift are predicted from a class embedding (1 + gain, bias); a plain
    batch norm when unconditional, and nothing when model.g_batchnorm is off."""

    def __init__(self, channels: int, embed_dim: int | None, enabled: bool):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=embed_dim is None) if enabled else None
        self.gain = nn.Linear(embed_dim, channels, bias=False) if enabled and embed_dim else None
        self.bias = nn.Linear(embed_dim, channels, bias=False) if enabled and embed_dim else None

    def forward(self, x: torch.Tensor, e: torch.Tensor | None) -> torch.Tensor:
        if self.bn is None:
            return x
        x = self.bn(x)
        if self.gain is None:
            return x
        e = e.to(x.dtype)
        return x * (1 + self.gain(e))[:, :, None, None] + self.bias(e)[:, :, None, None]


class GenBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, cfg: ModelConfig, embed_dim: int | None, sn):
        super().__init__()
        self.bn1 = CondBatchNorm(c_in, embed_dim, cfg.g_batchnorm)
        self.conv1 = sn(nn.Conv2d(c_in, c_out, 3, 1, 1))
        self.bn2 = CondBatchNorm(c_out, embed_dim, cfg.g_batchnorm)
        self.conv2 = sn(nn.Conv2d(c_out, c_out, 3, 1, 1))
        self.skip = sn(nn.Conv2d(c_in, c_out, 1))
        self.act = _act(cfg.g_activation)

    def forward(self, x: torch.Tensor, e: torch.Tensor | None) -> torch.Tensor:
        h = F.interpolate(self.act(self.bn1(x, e)), scale_factor=2, mode="nearest")
        h = self.conv2(self.act(self.bn2(self.conv1(h), e)))
        return h + self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))


class DiscBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, down: bool, first: bool, act: str, sn):
        super().__init__()
        self.first, self.down = first, down
        self.conv1 = sn(nn.Conv2d(c_in, c_out, 3, 1, 1))
        self.conv2 = sn(nn.Conv2d(c_out, c_out, 3, 1, 1))
        self.skip = sn(nn.Conv2d(c_in, c_out, 1)) if (c_in != c_out or down or first) else None
        self.act = _act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else self.act(x)  # the input block sees raw pixels, not an activation of them
        h = self.conv2(self.act(self.conv1(h)))
        if self.down:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.first:  # pool first: the 1x1 conv then runs on a quarter of the pixels (as in SNGAN)
            s = self.skip(F.avg_pool2d(s, 2) if self.down else s)
        elif self.skip is not None:
            s = self.skip(s)
            s = F.avg_pool2d(s, 2) if self.down else s
        return h + s


def generator_blocks(cfg: ModelConfig, channels: int, embed_dim: int | None, sn) -> tuple[nn.ModuleList, nn.Module]:
    widths = list(cfg.g_hidden)
    blocks = nn.ModuleList(GenBlock(c_in, c_out, cfg, embed_dim, sn)
                           for c_in, c_out in zip([widths[0]] + widths[:-1], widths))
    last = widths[-1]
    out = nn.ModuleDict({"bn": CondBatchNorm(last, None, cfg.g_batchnorm), "act": _act(cfg.g_activation),
                         "conv": sn(nn.Conv2d(last, channels, 3, 1, 1))})
    return blocks, out


def discriminator_blocks(cfg: ModelConfig, channels: int, size: int, sn) -> tuple[nn.Sequential, int]:
    """The D trunk and its output width; blocks halve the map while it is larger than 8x8."""
    blocks, c_in = [], channels
    for i, width in enumerate(cfg.d_hidden):
        down = size > 8
        blocks.append(DiscBlock(c_in, width, down, first=i == 0, act=cfg.d_activation, sn=sn))
        c_in, size = width, size // 2 if down else size
    return nn.Sequential(*blocks, _act(cfg.d_activation)), c_in


def init_weights(module: nn.Module) -> None:
    """Orthogonal conv/linear weights (PyTorch-StudioGAN's default for SNGAN), zero biases; the conditional
    batch norms start as plain batch norms (gain and bias predictors at zero)."""
    for m in module.modules():
        if isinstance(m, CondBatchNorm) and m.gain is not None:
            nn.init.zeros_(m.gain.weight)
            nn.init.zeros_(m.bias.weight)
        elif isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)) and not _in_cbn(module, m):
            weight = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            nn.init.orthogonal_(weight)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)


def _in_cbn(root: nn.Module, m: nn.Module) -> bool:
    return any(m is cbn.gain or m is cbn.bias for cbn in root.modules() if isinstance(cbn, CondBatchNorm))
