"""A set of images to score, from anywhere: a folder (searched recursively, any size, any mode) or an array file.

Folder images are decoded with Pillow and converted to RGB (grey is repeated over the three channels, an alpha
channel is dropped, palette images are expanded), then kept at their own size: the Inception network's own
resize (TF1 bilinear to 299x299, as the reference FID code does) is the only resize. Images are read in batches
of equal size, so a folder of any size never has to fit in memory at once.
"""
from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from ganpipe.data.imagefiles import read_array
from ganpipe.errors import SamplesError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".gif")
MIN_IMAGES = 10  # below this no score here means anything (k-NN scores use up to 5 neighbours)


@dataclass(frozen=True)
class ImageSet:
    label: str                           # what the user named
    files: tuple[Path, ...] = ()         # a folder's images, in sorted order
    sizes: tuple[tuple[int, int], ...] = ()  # (width, height) of each file
    array: torch.Tensor | None = None    # or: uint8 [N, C, H, W] from an array file
    content: str = ""                    # sha256 of the set's bytes (file names and contents, or the array)

    @property
    def n(self) -> int:
        return len(self.files) if self.array is None else len(self.array)

    def subset(self, n: int | None, seed: int = 0) -> "ImageSet":
        """At most n images: a fixed random subset (seeded, kept in the set's order), or the set itself."""
        if n is None or n >= self.n:
            return self
        keep = torch.randperm(self.n, generator=torch.Generator().manual_seed(seed))[:n].sort().values.tolist()
        if self.array is not None:
            return ImageSet(self.label, array=self.array[keep], content=f"{self.content}:subset{n}:{seed}")
        return ImageSet(self.label, tuple(self.files[i] for i in keep), tuple(self.sizes[i] for i in keep),
                        content=f"{self.content}:subset{n}:{seed}")

    def batches(self, batch_size: int) -> Iterator[tuple[list[int], torch.Tensor]]:
        """(indices into the set, uint8 [B, C, H, W]) for every image, in batches of images of one size."""
        if self.array is not None:
            for start in range(0, self.n, batch_size):
                yield list(range(start, min(start + batch_size, self.n))), self.array[start : start + batch_size]
            return
        by_size: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, size in enumerate(self.sizes):
            by_size[size].append(i)
        for size in sorted(by_size):
            indices = by_size[size]
            for start in range(0, len(indices), batch_size):
                chunk = indices[start : start + batch_size]
                yield chunk, torch.from_numpy(np.stack([_decode(self.files[i]) for i in chunk])).permute(0, 3, 1, 2)


def _decode(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError) as exc:  # truncated or corrupt past its header
        raise SamplesError(f"cannot decode {path} ({exc}); remove or replace it and score again") from None


def open_set(given: str | Path, value_range: str | None = None) -> ImageSet:
    """The image set at `given` (a folder or an array file), checked: SamplesError for a missing, empty or
    unreadable set, one with too few images, or an array of other than 1 or 3 channels."""
    path = Path(given)
    if not path.exists():
        raise SamplesError(f"{given}: no such folder or file")
    if path.is_dir():
        found = _folder(path)
    else:
        array = read_array(path, value_range)
        found = ImageSet(str(given), array=array, content=hashlib.sha256(path.read_bytes()).hexdigest())
    if found.n < MIN_IMAGES:
        raise SamplesError(f"{given} holds {found.n} image(s); scoring needs at least {MIN_IMAGES} (FID needs "
                           f"thousands to be comparable with published numbers)")
    return found


def _folder(path: Path) -> ImageSet:
    from PIL import Image, UnidentifiedImageError

    files = sorted(Path(root) / name for root, dirs, names in os.walk(path)
                   for name in names if Path(name).suffix.lower() in EXTENSIONS and not name.startswith("."))
    if not files:
        raise SamplesError(f"folder {path} holds no images ({', '.join(EXTENSIONS)}, searched recursively)")
    sizes, bad, digest = [], [], hashlib.sha256()
    for f in files:
        try:
            with Image.open(f) as im:
                sizes.append(im.size)
        except (OSError, UnidentifiedImageError) as exc:
            bad.append(f"{f.relative_to(path)} ({type(exc).__name__})")
            continue
        digest.update(str(f.relative_to(path)).encode() + b"\0" + f.read_bytes() + b"\0")
    if bad:
        raise SamplesError(f"{len(bad)} of the {len(files)} image files in {path} cannot be read, e.g. {bad[0]}; "
                           f"remove or replace them (scores over fewer images than asked would mislead)")
    return ImageSet(str(path), tuple(files), tuple(sizes), content=digest.hexdigest())
