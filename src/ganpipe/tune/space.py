"""SPACE.yaml: the params a study searches, their ranges, and what it optimises, strictly checked.

    params:
      train.g_lr: {low: 1e-5, high: 1e-3, log: true}   # a float param: a float range (log scale)
      train.d_steps: {low: 1, high: 3}                  # an int param: an int range
      train.loss: {choices: [hinge, nonsaturating]}     # any param: one of these values
    objectives:                                         # optional; default: the final FID, minimised
      - {metric: eval/fid, direction: minimize}
      - {metric: time/train_s, direction: minimize}     # several: a Pareto front (TPE, multi-objective)

A range's kind follows the param's own type in params.yaml (int or float), so a float range cannot land on an
int param. Every bound and every choice is applied to the params and loaded by the strict loader before the
study starts: a value the pipeline would refuse is refused here, naming the key.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ganpipe.errors import ConfigError
from ganpipe.params import config
from ganpipe.params.overlays import literal
from ganpipe.params.typed import check_keys

DIRECTIONS = ("minimize", "maximize")
RANGE_KEYS = {"low", "high", "log", "step"}


@dataclass(frozen=True)
class Dimension:
    key: str  # section.key
    kind: str  # float | int | categorical
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple | None = None

    def suggest(self, trial: Any) -> Any:
        """The value an Optuna trial draws for this param."""
        if self.kind == "categorical":
            # Optuna stores categorical choices as plain scalars: lists (g_betas) go as their YAML text
            picked = trial.suggest_categorical(self.key, [literal(c) if isinstance(c, list) else c
                                                          for c in self.choices])
            return yaml.safe_load(picked) if isinstance(picked, str) and picked.startswith("[") else picked
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)


@dataclass(frozen=True)
class Objective:
    metric: str  # an MLflow metric of the trial's run: eval/fid, score/best, time/train_s, ...
    direction: str  # minimize | maximize


@dataclass(frozen=True)
class Space:
    dimensions: tuple[Dimension, ...]
    objectives: tuple[Objective, ...]

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]


def default_objective(cfg: config.Config) -> Objective:
    """The final FID in the space the evaluation scores in (the classifier's, else Inception's), minimised."""
    return Objective("eval/fid" if cfg.evaluate.uses("classifier") else "eval/inception_fid", "minimize")


def load(path: Path, tree: dict) -> Space:
    """The space in `path`, checked against the params tree it will be applied to; ConfigError naming the file
    and the key otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"search space {path} not found; write one (docs/tuning.md shows the format)")
    try:
        raw = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    try:
        return parse(raw, tree)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def parse(raw: Any, tree: dict) -> Space:
    if not isinstance(raw, dict):
        raise ConfigError("a search space is a mapping with `params` (and optionally `objectives`)")
    check_keys(raw, "the space")
    unknown = sorted(set(raw) - {"params", "objectives"})
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r}; a space has `params` and (optionally) `objectives`")
    params = raw.get("params")
    if not isinstance(params, dict) or not params:
        raise ConfigError("`params` must map at least one params key (section.key) to a range or choices")
    flat = config.from_dict(tree).flat()
    dims = tuple(_dimension(str(key), spec, flat, tree) for key, spec in params.items())
    objectives = raw.get("objectives")
    if objectives is None:
        objs = (default_objective(config.from_dict(tree)),)
    else:
        if not isinstance(objectives, list) or not objectives:
            raise ConfigError("`objectives` must be a list of {metric: NAME, direction: minimize|maximize}")
        objs = tuple(_objective(o) for o in objectives)
        names = [o.metric for o in objs]
        if len(set(names)) != len(names):
            raise ConfigError(f"`objectives` names a metric twice: {names}")
    return Space(dims, objs)


def _objective(raw: Any) -> Objective:
    if not isinstance(raw, dict) or set(raw) != {"metric", "direction"}:
        raise ConfigError(f"an objective is {{metric: NAME, direction: minimize|maximize}}, got {raw!r}")
    if raw["direction"] not in DIRECTIONS:
        raise ConfigError(f"objective {raw['metric']}: direction must be one of {list(DIRECTIONS)}, "
                          f"got {raw['direction']!r}")
    if not isinstance(raw["metric"], str) or "/" not in raw["metric"]:
        raise ConfigError(f"objective metric must be an MLflow metric name such as eval/fid, got {raw['metric']!r}")
    return Objective(raw["metric"], raw["direction"])


def _dimension(key: str, spec: Any, flat: dict, tree: dict) -> Dimension:
    if key not in flat:
        raise ConfigError(f"params.{key}: not a params key (section.key, as in params.yaml)")
    if not isinstance(spec, dict):
        raise ConfigError(f"params.{key}: give {{low: A, high: B}} (log, step optional) or {{choices: [...]}}, "
                          f"got {spec!r}")
    if "choices" in spec:
        if set(spec) != {"choices"} or not isinstance(spec["choices"], list) or len(spec["choices"]) < 2:
            raise ConfigError(f"params.{key}: `choices` must be a list of at least 2 values, and alone")
        for choice in spec["choices"]:
            _check_value(key, choice, tree)
        return Dimension(key, "categorical", choices=tuple(spec["choices"]))
    unknown = set(spec) - RANGE_KEYS
    if unknown or not {"low", "high"} <= set(spec):
        raise ConfigError(f"params.{key}: a range is {{low: A, high: B}} with optional log: true and step: S; "
                          f"got keys {sorted(spec)}")
    current = flat[key]
    if isinstance(current, bool) or not isinstance(current, (int, float)) and current is not None:
        raise ConfigError(f"params.{key} is not a number ({current!r}): search it with choices: [...]")
    low, high = (_number(key, name, spec[name]) for name in ("low", "high"))
    log, step = spec.get("log", False), spec.get("step")
    kind = "int" if isinstance(current, int) else "float"
    if kind == "int" and not (float(low).is_integer() and float(high).is_integer()):
        raise ConfigError(f"params.{key} is an integer: low and high must be integers, got {low} and {high}")
    if not low < high:
        raise ConfigError(f"params.{key}: low ({low}) must be below high ({high})")
    if not isinstance(log, bool):
        raise ConfigError(f"params.{key}: log must be true or false, got {log!r}")
    if log and low <= 0:
        raise ConfigError(f"params.{key}: a log range needs low > 0, got {low}")
    if step is not None:
        step = _number(key, "step", step)
        if step <= 0 or log:
            raise ConfigError(f"params.{key}: step must be > 0 and cannot go with log: true")
    for bound in (low, high):
        _check_value(key, int(bound) if kind == "int" else float(bound), tree)
    return Dimension(key, kind, float(low), float(high), log, step)


def _number(key: str, name: str, value: Any) -> float:
    if isinstance(value, str):  # PyYAML reads 1e-5 as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"params.{key}: {name} must be a finite number, got {value!r}")
    return value


def _check_value(key: str, value: Any, tree: dict) -> None:
    """The params with `key` set to `value` load strictly; the loader's message otherwise."""
    section, name = key.split(".", 1)
    trial = copy.deepcopy(tree)
    trial[section][name] = value
    try:
        config.from_dict(trial)
    except ConfigError as exc:
        raise ConfigError(f"params.{key} = {value!r} is refused by the params: {exc}") from None


def assignments(values: dict[str, Any]) -> list[str]:
    """`-S section.key=value` values of a trial's params, in the form DVC reads."""
    return [f"{key}={literal(value)}" for key, value in values.items()]
