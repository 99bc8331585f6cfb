"""Strict construction of frozen dataclasses from parsed YAML: every key known, none missing, each value of
its annotated type (with the coercions YAML makes necessary), or a ConfigError that names the key path."""
from __future__ import annotations

import dataclasses
import keyword
import math
import types
import typing
from pathlib import Path
from typing import Any, Callable

from ganpipe.errors import ConfigError


def check_keys(mapping: dict, where: str) -> None:
    """YAML allows any scalar as a key (`1: x`, `true: y`); params are names, so anything else is refused here,
    before set operations on mixed key types could fail."""
    bad = [k for k in mapping if not isinstance(k, str)]
    if bad:
        raise ConfigError(f"{where} has a key that is not a name: {bad[0]!r}; keys must be plain words such as "
                          f"`epochs` (quote it if it really is a name)")


# keys an older params.yaml may still have: what replaced them
RENAMED = {"train.checkpoint_every": "it is train.checkpoint_every_s now (seconds between resume checkpoints, "
                                     "0 = every epoch)"}


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check `value` against the type hint; accept '2e-4' for floats (PyYAML reads it as a string)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, args[0], key)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{key} must be a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            result = float(value)
        elif isinstance(value, str):
            try:
                result = float(value)
            except ValueError:
                raise ConfigError(f"{key} must be a number (e.g. 2e-4), got {value!r}") from None
        else:
            raise ConfigError(f"{key} must be a number (e.g. 2e-4), got {value!r}")
        if not math.isfinite(result):
            raise ConfigError(f"{key} must be a finite number, got {value!r}")
        return result
    if hint is Path:  # written as a string in params.yaml; code gets a Path
        text = _coerce(value, str, key)
        if not text.strip():
            raise ConfigError(f"{key} must be a non-empty path, got {value!r}")
        return Path(text)
    if hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, bool):  # YAML 1.1: unquoted on/off/yes/no are booleans
            raise ConfigError(f"{key} must be a string, got {value!r} (YAML reads unquoted on, off, yes and no as "
                              f"true or false: quote the word)")
        raise ConfigError(f"{key} must be a string, got {value!r}")
    raise AssertionError(f"unsupported type hint {hint!r} for {key}")


def key_of(field_name: str) -> str:
    """The params key of a dataclass field: a Python keyword is spelt with a trailing _ in Python (sample.from
    is SampleConfig.from_) and without it in params.yaml, MLflow and -S overrides."""
    bare = field_name[:-1]
    return bare if field_name.endswith("_") and keyword.iskeyword(bare) else field_name


def as_tree(obj: Any) -> dict[str, Any]:
    """A section's values keyed as params.yaml keys them (dataclasses.asdict, with key_of)."""
    return {key_of(k): v for k, v in dataclasses.asdict(obj).items()}


def build_dataclass(cls: type, data: Any, section: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{section} must be a mapping of keys to values, got {data!r}")
    hints = {key_of(k): v for k, v in typing.get_type_hints(cls).items()}
    names = [key_of(f.name) for f in dataclasses.fields(cls)]
    renamed = lambda k: RENAMED[f"{section}.{k}"] + "; " if f"{section}.{k}" in RENAMED else ""  # noqa: E731
    check_names(data, names, section,
                lambda k: f"unknown key {section}.{k}; {renamed(k)}allowed keys in {section}: {names}",
                lambda k: f"missing key {section}.{k}; {section} needs: {names}")
    values = {n: _coerce(data[n], hints[n], f"{section}.{n}") for n in names}
    return cls(**{f.name: values[key_of(f.name)] for f in dataclasses.fields(cls)})


def check_names(mapping: dict, names: list[str], where: str, unknown: Callable[[str], str],
                missing: Callable[[str], str]) -> None:
    """Every key of `mapping` is a name in `names` and every name is there; ConfigError with unknown(key) or
    missing(name) otherwise."""
    check_keys(mapping, where)
    extra = sorted(set(mapping) - set(names))
    if extra:
        raise ConfigError(unknown(extra[0]))
    absent = [n for n in names if n not in mapping]
    if absent:
        raise ConfigError(missing(absent[0]))


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """{'train': {'g_lr': 2e-4}} -> {'train.g_lr': 2e-4}; tuples become lists."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = list(value) if isinstance(value, tuple) else value
    return out
