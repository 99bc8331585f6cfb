"""Small file helpers: every output is written to a temp name and renamed, so a crash never leaves half a file."""
from __future__ import annotations

import json
import shutil
from pathlib import Path


def write_text(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def write_json(path: Path, obj: dict) -> None:
    """Deterministic JSON (sorted keys, fixed float repr), so equal numbers give equal bytes for DVC."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def remove(path: Path) -> None:
    path = Path(path)
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
