"""Params changes expressed as assignments: `-S section.key=value` override files (as `dvc exp run -S` takes
them) and the params a run changed relative to a baseline params tree."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from ganpipe.errors import ConfigError
from ganpipe.params.config import Config, from_dict


def apply_overrides(tree: dict, assignments: list[str]) -> dict:
    """A copy of `tree` with 'section.key=value' assignments applied, values parsed as YAML (as `dvc exp run -S`)."""
    out = copy.deepcopy(tree)
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot or section not in out:
            raise ConfigError(f"override {assignment!r} must look like section.key=value with a known section")
        out[section][name] = yaml.safe_load(value)
    return out


def read_overrides(path: str | Path) -> list[str]:
    """The assignments of an overrides file: one `-S section.key=value` per line (`dvc exp run $(cat FILE)`)."""
    lines = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    bad = [line for line in lines if not line.startswith("-S ")]
    if bad:
        raise ConfigError(f"{path}: every line must be `-S section.key=value`, got {bad[0]!r}")
    return [line[3:].strip() for line in lines]


def changed_params(current: Config, baseline_tree: Any) -> dict[str, Any]:
    """{key: current value} for every param that differs from a baseline params tree (e.g. the commit a DVC
    experiment started from), compared after typed loading, so '2e-4' and 0.0002 are the same value."""
    base = from_dict(baseline_tree).flat()
    return {k: v for k, v in current.flat().items() if base.get(k) != v}
