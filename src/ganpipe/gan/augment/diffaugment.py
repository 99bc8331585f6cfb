"""DiffAugment (Zhao et al. 2020): differentiable augmentations applied to every image D sees, real and fake,
in D's and in G's step. D cannot memorise a small training set through them, and because they are
differentiable G still gets gradients. Randomness comes from an explicit generator, so runs repeat and
resume bitwise.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def translation(x: Tensor, gen: torch.Generator, ratio: float = 0.125) -> Tensor:
    """Shift each image by up to ratio * size pixels in x and y, filling with zeros (the official version)."""
    B, _, H, W = x.shape
    sh, sw = int(H * ratio + 0.5), int(W * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (B, 1, 1), generator=gen, device=gen.device).to(x.device)
    dx = torch.randint(-sw, sw + 1, (B, 1, 1), generator=gen, device=gen.device).to(x.device)
    b, gy, gx = torch.meshgrid(torch.arange(B, device=x.device), torch.arange(H, device=x.device),
                               torch.arange(W, device=x.device), indexing="ij")
    gy = (gy + dy + 1).clamp(0, H + 1)  # +1: index into the 1-pixel zero padding
    gx = (gx + dx + 1).clamp(0, W + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)
    return padded[b, gy, gx].permute(0, 3, 1, 2).contiguous()


def cutout(x: Tensor, gen: torch.Generator, ratio: float = 0.5) -> Tensor:
    """Zero one square of side ratio * size at a random place in each image."""
    B, _, H, W = x.shape
    ch, cw = int(H * ratio + 0.5), int(W * ratio + 0.5)
    oy = torch.randint(0, H + (1 - ch % 2), (B, 1, 1), generator=gen, device=gen.device).to(x.device)
    ox = torch.randint(0, W + (1 - cw % 2), (B, 1, 1), generator=gen, device=gen.device).to(x.device)
    ys = torch.arange(H, device=x.device).view(1, H, 1)
    xs = torch.arange(W, device=x.device).view(1, 1, W)
    top, left = oy - ch // 2, ox - cw // 2  # the square may hang over the border, as in the official code
    inside = (ys >= top) & (ys < top + ch) & (xs >= left) & (xs < left + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


POLICIES = {"translation": translation, "cutout": cutout}


def diff_augment(x: Tensor, policies: tuple[str, ...], gen: torch.Generator) -> Tensor:
    for name in policies:
        x = POLICIES[name](x, gen)
    return x
