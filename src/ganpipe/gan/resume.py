"""Resume state of an interrupted `train`: everything the loop needs to continue bitwise where it stopped.

The file is written atomically at an epoch's end every `train.checkpoint_every_s` seconds and removed when training
finishes. It is not a DVC output (DVC would delete it before re-running the stage); it lives at
paths.checkpoint and is only used when its fingerprint (model, train params, data hash) matches the run.
torch.save is fine here: unlike the generator, nothing hashes these bytes.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from ganpipe.console import note
from ganpipe.files import atomic

FORMAT = 2  # 2: rng holds one entry per rank


def fingerprint(*parts: object) -> str:
    """A hash of everything that shapes the training trajectory; a checkpoint is reused only on a match."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def save(path: Path, state: dict) -> None:
    with atomic(Path(path)) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)


def load(path: Path, expected_fingerprint: str) -> dict | None:
    """The saved state when `path` holds a checkpoint of this very run, else None (with the reason printed)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a torn or foreign file: never fatal, training just starts over
        note(f"note: ignoring unreadable checkpoint {path} ({type(exc).__name__}); training from scratch")
        return None
    if state.get("format") != FORMAT or state.get("fingerprint") != expected_fingerprint:
        note(f"note: checkpoint {path} belongs to other params, data or training code; training from scratch")
        return None
    return state


def rng_states(*generators: torch.Generator) -> dict:
    out = {"torch": torch.get_rng_state(), "generators": [g.get_state() for g in generators]}
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def restore_rng(states: dict, *generators: torch.Generator) -> None:
    torch.set_rng_state(states["torch"])
    for g, s in zip(generators, states["generators"]):
        g.set_state(s)
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def restore_shared_rng(states: dict, *generators: torch.Generator) -> None:
    """Only the given generators (the streams every rank shares), for a resume on another number of ranks."""
    for g, s in zip(generators, states["generators"]):
        g.set_state(s)


def placement_note(saved_world: int, world: int) -> str:
    """What a resume on another number of processes keeps exactly, and what it does not."""
    if saved_world == world:
        return ""
    return (f" (saved by {saved_world} process(es), resumed on {world}: weights, optimiser moments, EMA, epoch, "
            f"batch order and noise continue exactly; DiffAugment and dropout draws restart per process, and batch "
            f"norm sees slices of {world} instead of {saved_world}, so the run is not bitwise a {saved_world}-process "
            f"run)")
