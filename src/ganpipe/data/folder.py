"""A folder of image files -> uint8 images [N, C, S, S] and labels, decoded on every core into one array.

Layout: image files directly in the root (unlabelled), or one subfolder per class (labels from the sorted folder
names; files may sit in nested folders below a class folder). Files are taken in sorted path order, so the same
folder always gives the same array and content hash. Memory: the output array is allocated once; each worker
decodes one file at a time and sends back only the finished S x S image.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ganpipe.errors import DataError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
RESAMPLE = "bicubic"  # PIL's resize filters widen with the scale factor when shrinking, i.e. antialiased
ALPHA_BACKGROUND = 255  # transparent pixels are composited onto white


@dataclass
class Listing:
    files: list[str]  # absolute paths, in sorted order: strings, not Path objects (a million of those is a GB)
    labels: np.ndarray  # int64 [N]
    classes: list[str]  # class folder names in label order; [] for a flat, unlabelled folder
    stats: np.ndarray | None = None  # int64 [N, 2]: each file's size and modification time (ns) when listed
    root: str = ""  # the folder the files are under

    def rel(self, i: int) -> str:
        """File i's path under the root, with forward slashes."""
        return self.files[i][len(self.root) + 1 :].replace(os.sep, "/")

    def subset(self, keep: list[int]) -> "Listing":
        return Listing([self.files[i] for i in keep], self.labels[keep], self.classes,
                       None if self.stats is None else self.stats[keep], self.root)


@dataclass
class Decoded:
    images: np.ndarray  # uint8 [N, C, S, S], only readable files
    labels: np.ndarray  # int64 [N]
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path relative to root, reason)


def _images_under(folder: str, recursive: bool) -> tuple[list[str], list[tuple[int, int]]]:
    """(sorted paths of the image files in `folder`, or anywhere below it, and their (size, mtime_ns)). Hidden
    files are skipped, and what is not a regular file once symlinks are followed; symlinked folders are not
    entered."""
    found = []
    for dirpath, dirs, names in os.walk(folder) if recursive else [(folder, [], os.listdir(folder))]:
        for name in names:
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in EXTENSIONS:
                continue
            path = os.path.join(dirpath, name)
            try:
                st = os.stat(path)
            except OSError:  # a broken link, or gone since the directory was read
                continue
            if stat.S_ISREG(st.st_mode):
                found.append((path, st.st_size, st.st_mtime_ns))
    found.sort(key=lambda f: f[0].replace(os.sep, "/"))
    return [f[0] for f in found], [(f[1], f[2]) for f in found]


def list_folder(root: Path) -> Listing:
    """Every image file under `root` in sorted order, with its class; DataError for a folder that cannot serve."""
    if not root.is_dir():
        raise DataError(f"data.root {root} is not a folder; set data.root to the folder holding your images")
    top = str(root)
    subdirs = sorted(e.name for e in os.scandir(top) if e.is_dir() and not e.name.startswith("."))
    loose, loose_stats = _images_under(top, recursive=False)
    per_class = [(d, *_images_under(os.path.join(top, d), recursive=True)) for d in subdirs]
    per_class = [(name, files, stats) for name, files, stats in per_class if files]
    if per_class and loose:
        raise DataError(f"data.root {root} holds both image files ({len(loose)}, e.g. {os.path.basename(loose[0])}) "
                        f"and class folders ({', '.join(n for n, _, _ in per_class[:5])}); move the loose files into "
                        f"a class folder, or point data.root at a folder with only one of the two layouts")
    if per_class:
        files = [f for _, fs, _ in per_class for f in fs]
        stats = np.array([st for _, _, sts in per_class for st in sts], dtype=np.int64).reshape(-1, 2)
        labels = np.concatenate([np.full(len(fs), k, dtype=np.int64) for k, (_, fs, _) in enumerate(per_class)])
        return Listing(files, labels, [name for name, _, _ in per_class], stats, top)
    if not loose:
        raise DataError(f"data.root {root} holds no image files ({', '.join(EXTENSIONS)}, any case); point "
                        f"data.root at your image folder")
    return Listing(loose, np.zeros(len(loose), dtype=np.int64), [], np.array(loose_stats, dtype=np.int64), top)


def _eight_bit(img: Image.Image) -> Image.Image:
    """16- and 32-bit grey (PNG 'I;16', 'I') scaled to 8 bits; PIL's own convert('L') would clip at 255."""
    a = np.asarray(img)
    if img.mode == "F":
        a = np.clip(a, 0, 255)
    else:
        a = a.astype(np.float64) * (255.0 / 65535.0)
    return Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8), "L")


def fit(img: Image.Image, size: int | None, channels: int) -> np.ndarray:
    """One image -> uint8 [channels, S, S]: EXIF rotation applied, mode converted (transparency composited onto
    white), the shorter side resized to `size` (antialiased bicubic) and the centre cropped to a square."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        img = _eight_bit(img)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (ALPHA_BACKGROUND,) * 3 + (255,))
        img = Image.alpha_composite(background, rgba).convert("RGB")
    img = img.convert("L" if channels == 1 else "RGB")
    w, h = img.size
    side = size or min(w, h)
    if min(w, h) != side:
        scale = side / min(w, h)
        img = img.resize((max(side, round(w * scale)), max(side, round(h * scale))), Image.Resampling.BICUBIC)
        w, h = img.size
    left, top = (w - side) // 2, (h - side) // 2
    img = img.crop((left, top, left + side, top + side))
    a = np.asarray(img, dtype=np.uint8)
    return a[None] if channels == 1 else a.transpose(2, 0, 1)


def _decode(task: tuple[int, str, int | None, int]) -> tuple[int, np.ndarray | None, str]:
    i, path, size, channels = task
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL warns about odd EXIF or palettes; the image itself is fine
            with Image.open(path) as img:
                img.load()  # a truncated file fails here, not later
                return i, fit(img, size, channels), ""
    except Exception as exc:  # noqa: BLE001  a user's file can fail to decode in many ways; each is reported
        return i, None, f"{type(exc).__name__}: {str(exc)[:120]}"


def _worker_signals() -> None:
    """Workers leave Ctrl-C and SIGTERM to the stage process (which reports them in one line) and die quietly
    when it stops them: forked from it, they would otherwise inherit its handlers and print tracebacks."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def first_size(files: list[str]) -> int | None:
    """The shorter side of the first file that opens; None when none does."""
    for path in files:
        try:
            with Image.open(path) as img:
                return min(img.size)
        except Exception:  # noqa: BLE001  reported by the decode itself
            continue
    return None


def workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Decoder:
    """A pool of worker processes (none for a small job) that decodes files to S x S arrays, in order. Use it as
    a context manager: leaving the block stops the workers, at once after Ctrl-C or an error."""

    def __init__(self, size: int, channels: int, n_files: int):
        self.size, self.channels = size, channels
        procs = min(workers(), max(1, n_files // 64))  # a small folder is not worth starting processes for
        ctx = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
        self.pool = ctx.Pool(procs, initializer=_worker_signals) if procs > 1 else None

    def __enter__(self) -> "Decoder":
        return self

    def __exit__(self, kind, *_) -> None:
        if self.pool is not None:
            if kind is None:
                self.pool.close()  # finished: the workers exit on their own
                self.pool.join()
            self.pool.terminate()  # after Ctrl-C or an error: stop them now (a no-op once they have exited)

    def run(self, paths: list[str]):
        """(index into paths, image or None, why not) for each path, in order."""
        tasks = [(i, path, self.size, self.channels) for i, path in enumerate(paths)]
        return self.pool.imap(_decode, tasks, chunksize=16) if self.pool else map(_decode, tasks)


def decode(listing: Listing, size: int | None, channels: int, progress=None) -> Decoded:
    """Decode every listed file in parallel into one preallocated array (readable files only, in order).
    With size None, the first image's shorter side is the size of all."""
    n = len(listing.files)
    if size is None:
        size = first_size(listing.files) or 1  # none opens: each decode fails and says so
    out = np.empty((n, channels, size, size), dtype=np.uint8)
    ok = np.zeros(n, dtype=bool)
    unreadable: list[tuple[str, str]] = []
    with Decoder(size, channels, n) as decoder:
        for i, img, err in decoder.run(listing.files):
            if img is None:
                unreadable.append((listing.rel(i), err))
            else:
                out[i], ok[i] = img, True
            if progress is not None:
                progress(1)
    keep = np.flatnonzero(ok)
    if len(keep) < n:  # compact in place, in ascending order (row keep[j] >= j is never overwritten first)
        for j in range(0, len(keep), 1024):
            chunk = keep[j : j + 1024]
            out[j : j + len(chunk)] = out[chunk]
    return Decoded(out[: len(keep)], listing.labels[keep], unreadable)
