"""Images made anywhere -> uint8 [N, C, H, W] (+ optional labels), for `ganpipe evaluate --samples`.

Accepted: .npz (first array, or 'images'/'samples'/'x'; labels from 'labels'/'y'), .npy, .pt/.pth (a tensor
or a dict like npz; read with weights_only=True, so no code runs), .safetensors ('images' or the only tensor;
'labels'), or a folder of PNG files (sorted by name). Shapes N,H,W or N,C,H,W (N,H,W,C is recognised when C is
1 or 3 and H, W are not).

Pixel values are never guessed. uint8 (and integer) pixels are [0, 255]. For float pixels the range is
  - declared: `value_range` ("-1,1", "0,1" or "0,255") given by the caller (--value-range), or stored in the
    file (an npz/pt entry `value_range`, or safetensors metadata `value_range`); or
  - unambiguous: negative values occur, which only the GAN convention [-1, 1] has.
Anything else (floats in [0, 1], which a [-1, 1] generator that never went negative would also give) is refused
with the fix, as are values outside the declared range.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ganpipe.data.ranges import RANGES
from ganpipe.errors import SamplesError

IMAGE_KEYS = ("images", "samples", "x", "arr_0")
LABEL_KEYS = ("labels", "y")
RANGE_KEY = "value_range"
SLACK = 1e-4  # float round-off allowed outside a range's ends


def _pick(arrays: dict, path: Path) -> tuple[object, object | None, str | None]:
    declared = arrays.pop(RANGE_KEY, None)
    if declared is not None:
        declared = str(np.asarray(declared).reshape(-1)[0]) if not isinstance(declared, str) else declared
    if not arrays:
        raise SamplesError(f"{path} holds no arrays")
    image_key = next((k for k in IMAGE_KEYS if k in arrays), None)
    if image_key is None:
        if len(arrays) != 1:
            raise SamplesError(f"{path} holds {sorted(arrays)}; name the images one of {list(IMAGE_KEYS)}")
        image_key = next(iter(arrays))
    label_key = next((k for k in LABEL_KEYS if k in arrays), None)
    return arrays[image_key], (arrays[label_key] if label_key else None), declared


def _read(path: Path) -> tuple[object, object | None, str | None]:
    """(images, labels or None, the value range the file declares or None)."""
    suffix = path.suffix.lower()
    try:
        if path.is_dir():
            from PIL import Image

            files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".png")
            if not files:
                raise SamplesError(f"folder {path} holds no .png files")
            return np.stack([np.asarray(Image.open(f)) for f in files]), None, None
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                return _pick({k: z[k] for k in z.files}, path)
        if suffix == ".npy":
            return np.load(path, allow_pickle=False), None, None
        if suffix in (".pt", ".pth"):
            obj = torch.load(path, map_location="cpu", weights_only=True)
            return _pick(dict(obj), path) if isinstance(obj, dict) else (obj, None, None)
        if suffix == ".safetensors":
            from safetensors import safe_open
            from safetensors.torch import load_file

            with safe_open(str(path), framework="pt") as f:
                declared = (f.metadata() or {}).get(RANGE_KEY)
            images, labels, _ = _pick(load_file(str(path)), path)
            return images, labels, declared
    except SamplesError:
        raise
    except Exception as exc:  # numpy, torch, PIL and safetensors each raise their own types for bad files
        raise SamplesError(f"cannot read {path} ({type(exc).__name__}: {exc})") from None
    raise SamplesError(f"{path}: unknown format {suffix!r}; use .npz, .npy, .pt, .safetensors or a PNG folder")


def _to_nchw(x: torch.Tensor, channels: int, path: Path) -> torch.Tensor:
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4:
        raise SamplesError(f"{path}: images must be N,H,W or N,C,H,W, got shape {tuple(x.shape)}")
    if x.shape[1] != channels and x.shape[3] == channels:
        x = x.permute(0, 3, 1, 2)  # N,H,W,C as image libraries write it
    if x.shape[1] != channels:
        raise SamplesError(f"{path}: images have {x.shape[1]} channels, the evaluation classifier takes "
                           f"{channels} (shape {tuple(x.shape)})")
    return x


def value_range(x: torch.Tensor, declared: str | None, path: Path) -> tuple[float, float]:
    """The (low, high) that the pixels of `x` mean black and white; SamplesError when it cannot be known."""
    if declared is not None and declared not in RANGES:
        raise SamplesError(f"{path}: value range {declared!r} is not one of {list(RANGES)}")
    if not x.is_floating_point():
        if declared not in (None, "0,255"):
            raise SamplesError(f"{path}: integer pixels are [0, 255], but the value range {declared} was declared")
        return RANGES["0,255"]
    lo, hi = x.min().item(), x.max().item()
    if declared is None:
        if lo < -SLACK and hi <= 1 + SLACK:  # only [-1, 1] images have negative pixels
            return RANGES["-1,1"]
        guess = "0,255" if hi > 1 + SLACK else "0,1 or -1,1"
        raise SamplesError(f"{path}: float pixels in [{lo:.3g}, {hi:.3g}] do not say their range (this looks like "
                           f"{guess}); declare it: --value-range {' | '.join(RANGES)}, or store "
                           f"`{RANGE_KEY}` in the file")
    low, high = RANGES[declared]
    if lo < low - SLACK * high or hi > high + SLACK * high:
        raise SamplesError(f"{path}: float pixels in [{lo:.3g}, {hi:.3g}] lie outside the declared value range "
                           f"[{low:g}, {high:g}]")
    return low, high


def _to_uint8(x: torch.Tensor, declared: str | None, path: Path) -> torch.Tensor:
    if x.dtype == torch.uint8:
        value_range(x, declared, path)  # refuses a contradicting declaration
        return x
    if x.is_floating_point():
        if not torch.isfinite(x).all():
            raise SamplesError(f"{path}: {int((~torch.isfinite(x)).sum())} pixels are NaN or inf")
        low, high = value_range(x, declared, path)
        return ((x.double().clamp(low, high) - low) * (255.0 / (high - low))).round().to(torch.uint8)
    if x.dtype in (torch.int8, torch.int16, torch.int32, torch.int64):
        value_range(x, declared, path)
        if x.min() < 0 or x.max() > 255:
            raise SamplesError(f"{path}: integer pixels must be in [0, 255], got [{x.min()}, {x.max()}]")
        return x.to(torch.uint8)
    raise SamplesError(f"{path}: unsupported pixel type {x.dtype}; use uint8, or floats with a declared range")


def read_samples(path: str | Path, channels: int, size: int,
                 declared_range: str | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(uint8 [N, channels, size, size], int64 labels [N] or None); SamplesError for anything else.
    `declared_range` ("-1,1", "0,1", "0,255") says what float pixels mean; it must agree with the file's own."""
    path = Path(path)
    if not path.exists():
        raise SamplesError(f"samples {path} not found")
    images, labels, in_file = _read(path)
    if declared_range is not None and in_file is not None and declared_range != in_file:
        raise SamplesError(f"{path} declares value range {in_file}, but {declared_range} was given")
    x = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(images))
    if len(x) == 0:
        raise SamplesError(f"{path} holds no images")
    x = _to_uint8(_to_nchw(x, channels, path), declared_range or in_file, path).contiguous()
    if tuple(x.shape[2:]) != (size, size):
        raise SamplesError(f"{path}: images are {x.shape[2]}x{x.shape[3]}, the evaluation classifier takes "
                           f"{size}x{size}")
    if labels is not None:
        labels = labels if isinstance(labels, torch.Tensor) else torch.from_numpy(np.asarray(labels))
        if labels.shape != (len(x),):
            raise SamplesError(f"{path}: labels must be one per image ({len(x)}), got shape {tuple(labels.shape)}")
        labels = labels.to(torch.int64)
    return x, labels


def read_array(path: str | Path, declared_range: str | None = None) -> torch.Tensor:
    """uint8 [N, C, H, W] with C = 1 or 3 from an array file (not a folder), at the size it is stored: what
    `ganpipe score` reads; SamplesError for anything else."""
    path = Path(path)
    images, _, in_file = _read(path)
    x = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(images))
    if len(x) == 0:
        raise SamplesError(f"{path} holds no images")
    channels = 1 if x.ndim == 3 or (x.ndim == 4 and 1 in (x.shape[1], x.shape[3]) and x.shape[1] != 3) else 3
    if x.ndim == 4 and 3 not in (x.shape[1], x.shape[3]) and 1 not in (x.shape[1], x.shape[3]):
        raise SamplesError(f"{path}: images must have 1 (grey) or 3 (RGB) channels, got shape {tuple(x.shape)}")
    return _to_uint8(_to_nchw(x, channels, path), declared_range or in_file, path).contiguous()
