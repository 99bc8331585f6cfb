"""Weights on disk: safetensors (same weights -> same bytes, so DVC caches them), with the JSON needed to
rebuild the network stored in the file's metadata. One format for every network the pipeline writes."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ganpipe.errors import CheckpointError
from ganpipe.files import atomic


def save_module(module: nn.Module, path: Path, kind: str, meta: dict) -> None:
    """Write module's state dict to `path` atomically (temp file + rename: never half-written)."""
    tensors = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
    with atomic(path) as tmp:
        save_file(tensors, str(tmp), metadata=header(kind, meta))


def header(kind: str, meta: dict) -> dict[str, str]:
    """safetensors metadata naming what a file holds. ONE key: safetensors keeps metadata in a Rust HashMap
    whose order changes between processes, so two keys would give different bytes for identical contents (and
    break DVC caching)."""
    return {"ganpipe": json.dumps({"kind": kind, "meta": meta}, sort_keys=True)}


def read_header(path: Path, kind: str) -> dict:
    """The meta that `header` stored; ValueError if the file holds another kind (or none)."""
    with safe_open(str(path), framework="pt") as f:
        found = json.loads((f.metadata() or {}).get("ganpipe", "{}"))
    if found.get("kind") != kind:
        raise ValueError(f"file holds {found.get('kind')!r} data, expected {kind!r}")
    return found["meta"]


def load_module(path: Path, kind: str, build: Callable[[dict], nn.Module], stage: str) -> tuple[nn.Module, dict]:
    """Rebuild a network with build(meta) and load its weights; CheckpointError names `stage` as the fix."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{kind} weights {path} not found; run `dvc repro {stage}`")
    try:
        meta = read_header(path, kind)
        module = build(meta)
        module.load_state_dict(load_file(str(path)))
    except (SafetensorError, ValueError, KeyError, TypeError, RuntimeError, OSError) as exc:
        raise CheckpointError(f"{kind} weights {path} are corrupt or incompatible ({exc}); "
                              f"re-create them with `dvc repro -f {stage}`") from None
    return module.eval(), meta


def file_sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def state_equal(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
