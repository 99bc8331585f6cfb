"""A JSON schema of params.yaml, generated from the config dataclasses, so that editors complete and check
params.yaml (its first line points the YAML language server at params.schema.json). The dataclasses stay the one
definition: `python -m ganpipe.params.schema > params.schema.json` regenerates the file, and
tests/unit/test_schema.py fails when the checked-in file differs from what this module makes.

The schema checks what a JSON schema can: keys, types, the allowed names. The strict loader (config.py) checks
everything, ranges and combinations too, before any work."""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any

from ganpipe.params import config, rules
from ganpipe.params.typed import key_of

# the keys whose values are one of a fixed set of names (config.py refuses anything else)
NAMES: dict[str, tuple[str, ...]] = {
    "data.dataset": rules.DATASETS, "model.arch": rules.ARCHS, "model.g_activation": rules.ACTIVATIONS,
    "model.d_activation": rules.ACTIVATIONS, "train.loss": rules.LOSSES, "train.precision": rules.PRECISIONS,
    "train.compile": rules.COMPILE_MODES, "train.device": rules.DEVICES, "train.backend": rules.BACKENDS,
    "evaluate.features": rules.FEATURES, "data.unreadable": rules.UNREADABLE, "train.augment[]": rules.AUGMENTS, "train.ada_pipe": rules.ADA_PIPES,
}


def _type(hint: Any, key: str) -> dict:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return {"anyOf": [_type(inner[0], key), {"type": "null"}]}
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": _type(args[0], key + "[]")}
        return {"type": "array", "prefixItems": [_type(a, key) for a in args], "minItems": len(args),
                "maxItems": len(args)}
    if key in NAMES:
        return {"enum": list(NAMES[key])}
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if hint is float:  # PyYAML reads 2e-4 as a string; the loader accepts it
        return {"anyOf": [{"type": "number"}, {"type": "string", "pattern": "^[-+]?[0-9.]+[eE][-+]?[0-9]+$"}]}
    if hint in (str, Path):
        return {"type": "string", "minLength": 1}
    raise TypeError(f"no JSON schema type for {hint!r} ({key})")


def _section(cls: type, name: str, partial: bool) -> dict:
    hints = {key_of(k): v for k, v in typing.get_type_hints(cls).items()}
    fields = [key_of(f.name) for f in dataclasses.fields(cls)]
    doc = (cls.__doc__ or "").strip().split("\n")[0]
    out = {"type": "object", "additionalProperties": False, **({} if partial else {"required": fields}),
           "properties": {f: _type(hints[f], f"{name}.{f}") for f in fields}}
    return ({"description": doc} | out) if doc and not doc.startswith(f"{cls.__name__}(") else out


def schema(partial: bool = False) -> dict:
    """The schema of params.yaml; with `partial`, of a config overlay (configs/*.yaml): the same keys and types,
    none of them required."""
    sections = {name: cls for name, cls in typing.get_type_hints(config.Config).items() if name in config.SECTIONS}
    title = "ganpipe config overlay (configs/*.yaml)" if partial else "ganpipe params.yaml"
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title,
            "type": "object", "additionalProperties": False, **({} if partial else {"required": list(sections)}),
            "properties": {name: _section(cls, name, partial) for name, cls in sections.items()}}


def text(partial: bool = False) -> str:
    return json.dumps(schema(partial), indent=1) + "\n"


if __name__ == "__main__":  # python -m ganpipe.params.schema [--config] > FILE
    import sys

    sys.stdout.write(text(partial="--config" in sys.argv[1:]))
