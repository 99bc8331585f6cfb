"""Small file helpers: every output is written to a temp name and renamed, so a crash never leaves half a file."""
from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic(path: Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; whatever is written there replaces `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    with atomic(path) as tmp:
        tmp.write_text(text)


def class_counts_csv(column: str, groups: dict[str, list[int]]) -> str:
    """CSV 'class,<column>,count' with one row per class for each group, in the groups' order."""
    rows = [f"class,{column},count"]
    rows += [f"{k},{name},{n}" for name, counts in groups.items() for k, n in enumerate(counts)]
    return "\n".join(rows) + "\n"


def write_json(path: Path, obj: dict) -> None:
    """Deterministic JSON (sorted keys, fixed float repr), so equal numbers give equal bytes for DVC."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def remove(path: Path) -> None:
    path = Path(path)
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def code_text(source: str) -> str:
    """What a module does, without what only people read: its syntax tree with docstrings dropped (comments
    are not in the tree). Editing a comment or a docstring, or re-wrapping a line, leaves this unchanged."""
    import ast

    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, include_attributes=False)


def source_sha256(*parts: str) -> str:
    """sha256 of the code of ganpipe modules or subpackages named relative to the package folder (e.g. "gan",
    "data/images.py"), in a fixed order: a fingerprint of the code that produced a result. It hashes code_text,
    so a comment or docstring edit does not turn into a new evaluation or a refused resume."""
    import hashlib

    root = Path(__file__).resolve().parent
    files = sorted({f for part in parts for f in ((root / part).rglob("*.py") if (root / part).is_dir()
                                                  else [root / part])})
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + code_text(f.read_text()).encode() + b"\0")
    return h.hexdigest()
