"""params.schema.json is what ganpipe.params.schema makes from the config dataclasses (regenerate it with
`python -m ganpipe.params.schema > params.schema.json`), params.yaml passes it, and what it refuses the strict
loader refuses too. configs/config.schema.json is its partial twin for the config overlays."""
from __future__ import annotations

import copy
import json

import jsonschema
import pytest
import yaml

from ganpipe.errors import ConfigError
from ganpipe.params import config, schema

from helpers import ROOT


@pytest.fixture(scope="module")
def params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_the_checked_in_schema_is_what_the_dataclasses_make():
    assert (ROOT / "params.schema.json").read_text() == schema.text(), \
        "regenerate: python -m ganpipe.params.schema > params.schema.json"


def test_the_configs_schema_is_the_partial_one_and_every_config_passes_it_and_points_at_it():
    assert (ROOT / "configs" / "config.schema.json").read_text() == schema.text(partial=True), \
        "regenerate: python -m ganpipe.params.schema --config > configs/config.schema.json"
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        text = path.read_text()
        assert text.startswith("# yaml-language-server: $schema=config.schema.json"), path.name
        jsonschema.validate(yaml.safe_load(text), schema.schema(partial=True))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"train": {"epochs": "many"}}, schema.schema(partial=True))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"train": {"epoch": 3}}, schema.schema(partial=True))


def test_params_yaml_passes_the_schema_and_points_editors_at_it(params):
    jsonschema.validate(params, schema.schema())
    assert (ROOT / "params.yaml").read_text().startswith("# yaml-language-server: $schema=params.schema.json")


@pytest.mark.parametrize("section, key, value", [
    ("train", "loss", "hinge2"), ("model", "arch", "vgg"), ("data", "dataset", "imagenet"),
    ("train", "precision", "fp16"), ("evaluate", "features", "clip"), ("train", "augment", ["colour"]),
    ("train", "epochs", "many"), ("model", "conditional", "yes"), ("sample", "classes", "3"),
    ("train", "nope", 1), ("paths", "generator", ""), ("train", "g_lr", "fast"),
])
def test_what_the_schema_refuses_the_loader_refuses(params, section, key, value):
    bad = copy.deepcopy(params)
    bad[section][key] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema.schema())
    with pytest.raises(ConfigError):
        config.from_dict(bad)


def test_every_key_of_every_section_is_in_the_schema():
    properties = json.loads(schema.text())["properties"]
    assert set(properties) == set(config.SECTIONS)
    import dataclasses
    import typing

    from ganpipe.params.typed import key_of

    hints = typing.get_type_hints(config.Config)
    for name in config.SECTIONS:
        fields = {key_of(f.name) for f in dataclasses.fields(hints[name])}  # sample.from is SampleConfig.from_
        assert set(properties[name]["properties"]) == fields, name
