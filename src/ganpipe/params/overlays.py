"""Config overlays: commented YAML files under configs/ in params.yaml's shape, holding only the keys they change.

`ganpipe run colour` hands an overlay to `dvc exp run` as `-S section.key=value` assignments, so params.yaml
stays the one file DVC reads and `dvc exp show` lists exactly what each experiment changed. The values are
written in Hydra's override grammar (what `-S` parses): strings quoted, lists in brackets.
"""
from __future__ import annotations

import copy
import math
import re
from pathlib import Path
from typing import Any

import yaml

from ganpipe.errors import ConfigError

CONFIG_DIR = "configs"
SUFFIXES = (".yaml", ".yml")


def find(name: str, root: Path) -> Path:
    """The overlay a user named: a file path, or the stem of a file under configs/ (`colour`)."""
    given = Path(name)
    if given.suffix in SUFFIXES and given.is_file():
        return given
    for suffix in SUFFIXES:
        candidate = root / CONFIG_DIR / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    known = sorted(p.stem for p in (root / CONFIG_DIR).glob("*.y*ml")) if (root / CONFIG_DIR).is_dir() else []
    raise ConfigError(f"no config {name!r}: give a YAML file or one of the configs in {root / CONFIG_DIR}: "
                      f"{', '.join(known) or 'none'}")


def read(path: Path) -> dict[str, dict[str, Any]]:
    """An overlay file's {section: {key: value}}; ConfigError naming the file when it is not that shape."""
    try:
        tree = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not a readable YAML file ({str(exc).splitlines()[0]})") from None
    if tree is None:
        return {}
    if not isinstance(tree, dict) or not all(isinstance(v, dict) for v in tree.values()):
        raise ConfigError(f"{path}: a config is params.yaml's sections with only the keys it changes, e.g. "
                          f"`train:` then `  epochs: 20` on the next line")
    return tree


def merge(tree: dict, overlay: dict[str, dict[str, Any]], source: str = "config") -> dict:
    """A copy of the params `tree` with the overlay's keys replaced (a list replaces the whole list)."""
    out = copy.deepcopy(tree)
    for section, keys in overlay.items():
        if section not in out or not isinstance(out[section], dict):
            raise ConfigError(f"{source}: unknown section {section!r}; params.yaml has {list(tree)}")
        for key, value in keys.items():
            if key not in out[section]:
                raise ConfigError(f"{source}: unknown key {section}.{key}; {section} has {list(tree[section])}")
            out[section][key] = copy.deepcopy(value)
    return out


def assignments(overlay: dict[str, dict[str, Any]]) -> list[str]:
    """The overlay as `dvc exp run -S` assignments: ['train.loss=hinge', "model.g_hidden=[256,128]", ...]."""
    return [f"{section}.{key}={literal(value)}" for section, keys in overlay.items() for key, value in keys.items()]


_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_\-./]*")
_KEYWORDS = {"null", "true", "false", "inf", "nan", "yes", "no", "on", "off"}


def literal(value: Any) -> str:
    """`value` in Hydra's override grammar, parsed back to the same value by `-S` (and by YAML for the plain
    cases): plain words bare, other strings single-quoted, numbers, booleans, null and lists as written."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else "nan" if math.isnan(value) else repr(value)
    if isinstance(value, str):
        if _PLAIN.fullmatch(value) and value.lower() not in _KEYWORDS:
            return value
        # Hydra's quoted strings: backslashes are literal except a run of them before a quote or the end
        escaped = re.sub(r"(\\+)(?='|$)", lambda m: m.group(1) * 2, value).replace("'", "\\'")
        return f"'{escaped}'"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(literal(v) for v in value) + "]"
    raise ConfigError(f"a config value must be a number, text, true/false, null or a list, got {value!r}")
