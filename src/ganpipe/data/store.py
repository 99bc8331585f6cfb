"""Arrays in safetensors files, written and read without a second copy in memory.

`safetensors.torch.save_file` turns each tensor into one `bytes` object before writing, and `load_file` reads
the whole file: for a prepared dataset of a few GB that doubles the peak memory. The format is simple (an 8-byte
little-endian header length, a JSON header, then the raw buffers), so this module streams the buffers straight
from the arrays and maps them back with `numpy.memmap`. The files are byte-identical to `save_file`'s (tested),
so both readers accept them and DVC's hashes do not depend on which wrote them.
"""
from __future__ import annotations

import errno
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ganpipe.errors import DataError

_DTYPES = {np.dtype(np.uint8): "U8", np.dtype(np.int64): "I64", np.dtype(np.float32): "F32",
           np.dtype(np.float64): "F64"}
_NUMPY = {v: k for k, v in _DTYPES.items()}
_CHUNK = 64 << 20  # bytes written per call: bounded, and large enough to stream at disk speed


@dataclass(frozen=True)
class Layout:
    """Where each array of a safetensors file lives: (dtype, shape) per name, the header bytes, the offsets."""
    specs: dict[str, tuple[np.dtype, tuple[int, ...]]]
    header: bytes  # the 8-byte length and the JSON header, padded
    offsets: dict[str, int]  # file offset of each buffer

    def nbytes(self, name: str) -> int:
        """Bytes of array `name`'s buffer."""
        return _nbytes(*self.specs[name])

    @property
    def size(self) -> int:
        return max(self.offsets[k] + self.nbytes(k) for k in self.specs) if self.specs else len(self.header)


def _nbytes(dtype: np.dtype, shape: tuple[int, ...]) -> int:
    return np.dtype(dtype).itemsize * int(np.prod(shape))


def layout(specs: dict[str, tuple[np.dtype, tuple[int, ...]]], header_len: int | None = None) -> Layout:
    """The layout safetensors' own writer gives these arrays; `header_len` pads the JSON header with spaces to
    that length (the format allows it), so a file can shrink later without moving its header."""
    specs = {k: (np.dtype(d), tuple(s)) for k, (d, s) in specs.items()}
    # safetensors orders buffers by dtype alignment (largest first), then by name
    order = sorted(specs, key=lambda k: (-specs[k][0].itemsize, k))
    header, offset = {}, 0
    for name in order:
        dtype, shape = specs[name]
        assert dtype in _DTYPES, (name, dtype)
        header[name] = {"dtype": _DTYPES[dtype], "shape": list(shape),
                        "data_offsets": [offset, offset + _nbytes(dtype, shape)]}
        offset += _nbytes(dtype, shape)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the buffers start 8-byte aligned
    if header_len is not None:
        assert header_len >= len(text) and header_len % 8 == 0, (header_len, len(text))
        text += b" " * (header_len - len(text))
    start = 8 + len(text)
    return Layout(specs, struct.pack("<Q", len(text)) + text,
                  {name: start + header[name]["data_offsets"][0] for name in order})


def write_arrays(path: Path, arrays: dict[str, np.ndarray | torch.Tensor]) -> None:
    """Write `arrays` as a safetensors file, buffer by buffer (no copy of the data is made)."""
    arrays = {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in arrays.items()}
    for name, a in arrays.items():
        assert a.flags.c_contiguous and a.dtype in _DTYPES, (name, a.dtype, a.flags)
    plan = layout({k: (a.dtype, a.shape) for k, a in arrays.items()})
    order = sorted(arrays, key=lambda k: plan.offsets[k])
    with open(path, "wb") as f:
        f.write(plan.header)
        for name in order:
            flat = arrays[name].reshape(-1).view(np.uint8)
            for i in range(0, len(flat), _CHUNK):
                f.write(memoryview(flat[i : i + _CHUNK]))


def read_header(path: Path) -> tuple[dict, int]:
    """(header, offset of the first buffer); DataError when the file is not safetensors."""
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > 100 << 20:
                raise ValueError(f"header of {n} bytes")
            header = json.loads(f.read(n))
    except (OSError, struct.error, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not a valid safetensors file ({exc})") from None
    header.pop("__metadata__", None)
    return header, 8 + n


def map_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of the file, memory-mapped copy-on-write: nothing is read until it is used, and writes (none
    are made) would never reach the file."""
    header, start = read_header(path)
    size = Path(path).stat().st_size
    out = {}
    for name, entry in header.items():
        lo, hi = entry["data_offsets"]
        dtype, shape = _NUMPY.get(entry["dtype"]), tuple(entry["shape"])
        if dtype is None or start + hi > size or hi - lo != dtype.itemsize * int(np.prod(shape)):
            raise DataError(f"{path} is truncated or holds an unknown array ({name}: {entry})")
        out[name] = (np.memmap(path, dtype=dtype, mode="c", offset=start + lo, shape=shape) if hi > lo
                     else np.zeros(shape, dtype))
    return out


def create(path: Path, plan: Layout) -> None:
    """A file of the plan's full size with its header written and every buffer's disk space reserved up front, so
    a full disk fails here with OSError(ENOSPC) and never later (a write into a sparse file that cannot grow
    would fail half-way through the work)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.pwrite(fd, plan.header, 0)
        try:
            os.posix_fallocate(fd, 0, plan.size)
        except OSError as exc:
            if exc.errno != errno.EOPNOTSUPP and exc.errno != errno.EINVAL:  # filesystems that cannot reserve
                raise
            os.ftruncate(fd, plan.size)
    finally:
        os.close(fd)


def shrink(path: Path, plan: Layout, keep: np.ndarray, rows_per_copy: int = 256) -> Layout:
    """Keep only rows `keep` (sorted) of every array of the file (each array's first axis is the same N), in
    place: the header keeps its length, every buffer moves towards the start, then the file is truncated. Rows
    are copied in ascending order, and a row's new place never lies past its old one, so nothing is overwritten
    before it is read."""
    keep = np.asarray(keep, dtype=np.int64)
    header_len = len(plan.header) - 8
    new = layout({k: (d, (len(keep), *s[1:])) for k, (d, s) in plan.specs.items()}, header_len)
    with open(path, "r+b") as f:
        fd = f.fileno()
        for name in sorted(plan.specs, key=lambda k: plan.offsets[k]):
            dtype, shape = plan.specs[name]
            row = _nbytes(dtype, shape[1:])
            for j in range(0, len(keep), rows_per_copy):
                chunk = keep[j : j + rows_per_copy]
                # the rows this chunk needs are read before any of them is written
                lo, hi = int(chunk[0]), int(chunk[-1]) + 1
                at = plan.offsets[name]
                if (hi - lo) * row <= 2 * _CHUNK:  # one read of the span; else row by row (memory stays bounded)
                    span = np.frombuffer(os.pread(fd, (hi - lo) * row, at + lo * row), np.uint8)
                    data = span.reshape(hi - lo, row)[chunk - lo].tobytes()
                else:
                    data = b"".join(os.pread(fd, row, at + int(i) * row) for i in chunk)
                os.pwrite(fd, data, new.offsets[name] + j * row)
        os.pwrite(fd, new.header, 0)
        f.truncate(new.size)
    return new
