"""`ganpipe generate`: images from a trained generator, without writing Python.

The generator comes from a safetensors file (models/generator.safetensors, a DVC output or `dvc pull`-ed), or
from MLflow: a training run's id or its DVC experiment name (the local store, or a team server). Latents come
from --seed alone (optionally truncated), labels from --classes in turn, so the same command gives the same
bytes on the same machine kind. Output by what --out names: a folder (one PNG per image), FILE.npz or
FILE.safetensors (uint8 images [N, C, H, W] and labels: what `ganpipe evaluate --samples` reads), or FILE.png
(a grid; with --interpolate, one latent walk per row).
"""
from __future__ import annotations

import dataclasses
import math
import tempfile
from pathlib import Path

import numpy as np
import torch

from ganpipe.checkpoint import file_sha256
from ganpipe.data.images import make_grid, save_png
from ganpipe.data.samples import save_samples
from ganpipe.errors import ConfigError
from ganpipe.files import atomic
from ganpipe.gan import sampling
from ganpipe.params import sizes
from ganpipe.params.config import TrackingConfig

FORMATS = (".npz", ".safetensors", ".png")  # or a folder


@dataclasses.dataclass(frozen=True)
class Request:
    source: str  # a generator file, a run id or an experiment name
    n: int
    out: Path
    seed: int = 0
    classes: tuple[int, ...] | None = None
    truncation: float | None = None
    interpolate: int | None = None  # steps per row: a grid of n rows
    batch_size: int = 500


def check(req: Request) -> None:
    """Refuse a request that cannot work, before loading anything."""
    if req.n < 1:
        raise ConfigError(f"--n must be at least 1, got {req.n}")
    if req.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {req.batch_size}")
    suffix = req.out.suffix.lower()
    if suffix and suffix not in FORMATS:
        raise ConfigError(f"--out {req.out}: write a folder (one PNG per image) or a {', '.join(FORMATS)} file")
    if req.interpolate is not None and suffix != ".png":
        raise ConfigError("--interpolate draws a grid (one latent walk per row): give --out FILE.png")
    if req.out.exists() and req.out.is_dir() and any(req.out.iterdir()):
        raise ConfigError(f"--out {req.out} is a folder that is not empty; give a new or empty folder")


def load(source: str, tracking: TrackingConfig, scratch: Path) -> tuple[sampling.Generator, str]:
    """The generator `source` names, and where it came from (for the output's metadata)."""
    path = Path(source)
    if path.is_file():
        return sampling.load_generator(path), f"{path} (sha256 {file_sha256(path)[:12]})"
    if path.suffix == ".safetensors" or "/" in source:
        raise ConfigError(f"no generator file {source}; `dvc repro train` or `dvc pull` makes models/generator."
                          f"safetensors, or give an MLflow run id or experiment name")
    from ganpipe.track import generators
    from ganpipe.track import tracking as store

    store.connect(dataclasses.replace(tracking, enabled=True))  # a store that is down fails here, in seconds
    run = generators.training_run(dataclasses.replace(tracking, enabled=True), source)
    weights = generators.download_generator(run, scratch)
    return sampling.load_generator(weights), f"MLflow run {run.run_id} ({run.name})"


def latents(req: Request, gen: sampling.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(z, labels) of every image asked for."""
    z_dim = gen.model.z_dim
    if req.interpolate is not None:
        z = sampling.interpolation(req.n, req.interpolate, z_dim, req.seed, req.truncation)
        rows = sampling.requested_labels(req.n, req.classes, gen)  # one class per row
        return z, None if rows is None else rows.repeat_interleave(req.interpolate)
    return sampling.noise(req.n, z_dim, req.seed, req.truncation), sampling.requested_labels(req.n, req.classes, gen)


def write(images: torch.Tensor, labels: torch.Tensor | None, req: Request, meta: dict) -> str:
    """Write the images as --out asks; returns what was written, in words."""
    out, suffix = req.out, req.out.suffix.lower()
    if suffix == ".png":
        per_row = req.interpolate or max(1, math.isqrt(len(images) - 1) + 1)
        save_png(make_grid(images, per_row), out)
        return f"wrote a grid of {len(images)} images to {out}"
    if suffix == ".safetensors":
        save_samples(images, out, labels, {"generated_by": meta})
        return f"wrote {len(images)} images to {out}"
    if suffix == ".npz":
        arrays = {"images": images.numpy()} | ({} if labels is None else {"labels": labels.numpy()})
        with atomic(out) as tmp:
            _save_npz(tmp, arrays)
        return f"wrote {len(images)} images to {out}"
    out.mkdir(parents=True, exist_ok=True)
    width = len(str(len(images) - 1))
    for i, image in enumerate(images):
        name = f"{i:0{width}d}" + ("" if labels is None else f"_class{int(labels[i])}") + ".png"
        save_png(image.permute(1, 2, 0).squeeze(-1).contiguous().numpy(), out / name)
    return f"wrote {len(images)} PNG files to {out}/"


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez_compressed's format (np.load reads it) with a fixed timestamp on each member: numpy stamps the
    current time, so the same arrays would give other bytes on every call."""
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            member = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(member, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(array), allow_pickle=False)


def run(req: Request, tracking: TrackingConfig) -> str:
    check(req)
    with tempfile.TemporaryDirectory() as scratch:
        gen, origin = load(req.source, tracking, Path(scratch))
        c, h, w = gen.shape
        total = req.n * (req.interpolate or 1)
        sizes.check_memory("--n", total, c * h * w + 4 * gen.model.z_dim, "the images and their noise")
        z, labels = latents(req, gen)
        images = sampling.draw(gen.net, z, labels, req.batch_size, progress=total > 10 * req.batch_size)
    meta = {"source": origin, "seed": req.seed, "truncation": req.truncation, "n": req.n}
    return write(images, labels, req, meta) + f" (generator: {origin}; seed {req.seed}" + (
        f", truncation {req.truncation}" if req.truncation is not None else "") + ")"
