"""Arrays in safetensors files, written and read without a second copy in memory.

`safetensors.torch.save_file` turns each tensor into one `bytes` object before writing, and `load_file` reads
the whole file: for a prepared dataset of a few GB that doubles the peak memory. The format is simple (an 8-byte
little-endian header length, a JSON header, then the raw buffers), so this module streams the buffers straight
from the arrays and maps them back with `numpy.memmap`. The files are byte-identical to `save_file`'s (tested),
so both readers accept them and DVC's hashes do not depend on which wrote them.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import torch

from ganpipe.errors import DataError

_DTYPES = {np.dtype(np.uint8): "U8", np.dtype(np.int64): "I64", np.dtype(np.float32): "F32",
           np.dtype(np.float64): "F64"}
_NUMPY = {v: k for k, v in _DTYPES.items()}
_CHUNK = 64 << 20  # bytes written per call: bounded, and large enough to stream at disk speed


def write_arrays(path: Path, arrays: dict[str, np.ndarray | torch.Tensor]) -> None:
    """Write `arrays` as a safetensors file, buffer by buffer (no copy of the data is made)."""
    arrays = {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in arrays.items()}
    # safetensors orders buffers by dtype alignment (largest first), then by name
    order = sorted(arrays, key=lambda k: (-arrays[k].dtype.itemsize, k))
    header, offset = {}, 0
    for name in order:
        a = arrays[name]
        assert a.flags.c_contiguous and a.dtype in _DTYPES, (name, a.dtype, a.flags)
        header[name] = {"dtype": _DTYPES[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the buffers start 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
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
