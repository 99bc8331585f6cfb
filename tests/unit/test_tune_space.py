"""SPACE.yaml (ganpipe/tune/space.py): ranges typed by the param they search, every bound and choice loaded by the
strict params loader, one-line errors naming the key, and Optuna drawing values the params accept."""
from __future__ import annotations

import optuna
import pytest
import yaml

from ganpipe.params import config
from ganpipe.params.config import ConfigError
from ganpipe.params.overrides import apply_overrides
from ganpipe.tune import space

SPACE = """
params:
  train.g_lr: {low: 1e-5, high: 1e-3, log: true}   # PyYAML reads these as strings: coerced
  train.d_steps: {low: 1, high: 3}
  train.gamma: {low: 0.0, high: 1.0, step: 0.25}
  train.loss: {choices: [hinge, nonsaturating]}
  train.g_betas: {choices: [[0.0, 0.9], [0.5, 0.999]]}
objectives:
  - {metric: eval/fid, direction: minimize}
  - {metric: time/train_s, direction: minimize}
"""


def test_a_space_is_typed_by_its_params_and_every_draw_loads(default_params, tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(SPACE)
    parsed = space.load(path, default_params)
    kinds = {d.key: d.kind for d in parsed.dimensions}
    assert kinds == {"train.g_lr": "float", "train.d_steps": "int", "train.gamma": "float",
                     "train.loss": "categorical", "train.g_betas": "categorical"}
    assert parsed.directions == ["minimize", "minimize"]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), directions=parsed.directions)
    for _ in range(20):
        trial = study.ask()
        values = {d.key: d.suggest(trial) for d in parsed.dimensions}
        cfg = config.from_dict(apply_overrides(default_params, space.assignments(values)))
        assert 1e-5 <= cfg.train.g_lr <= 1e-3 and cfg.train.d_steps in (1, 2, 3)
        assert cfg.train.gamma in (0.0, 0.25, 0.5, 0.75, 1.0) and cfg.train.loss in ("hinge", "nonsaturating")
        assert cfg.train.g_betas in ((0.0, 0.9), (0.5, 0.999)) and isinstance(values["train.d_steps"], int)


def test_the_default_objective_is_the_final_fid_of_the_space_evaluated(default_params):
    parsed = space.parse({"params": {"train.d_lr": {"low": 1e-4, "high": 1e-3}}}, default_params)
    assert parsed.objectives == (space.Objective("eval/fid", "minimize"),)
    default_params["evaluate"]["features"] = "inception"
    parsed = space.parse({"params": {"train.d_lr": {"low": 1e-4, "high": 1e-3}}}, default_params)
    assert parsed.objectives == (space.Objective("eval/inception_fid", "minimize"),)


@pytest.mark.parametrize("raw,message", [
    ("[1, 2]", "a search space is a mapping"),
    ("params: {}", "`params` must map at least one params key"),
    ("params: {train.g_lr: {low: 1e-5, high: 1e-3}}\nsearch: 1", "unknown key 'search'"),
    ("params: {train.glr: {low: 1, high: 2}}", "params.train.glr: not a params key"),
    ("params: {train.g_lr: 0.001}", "params.train.g_lr: give {low: A, high: B}"),
    ("params: {train.g_lr: {low: 1e-3, high: 1e-5}}", "low (0.001) must be below high (1e-05)"),
    ("params: {train.g_lr: {low: 0, high: 1e-3, log: true}}", "a log range needs low > 0"),
    ("params: {train.g_lr: {low: 1e-5, high: 2.0}}", "params.train.g_lr = 2.0 is refused by the params: "
                                                      "train.g_lr must be at most"),
    ("params: {train.d_steps: {low: 1, high: 2.5}}", "params.train.d_steps is an integer"),
    ("params: {train.d_steps: {low: 1, high: 3, lo: 0}}", "a range is {low: A, high: B}"),
    ("params: {train.loss: {low: 1, high: 3}}", "params.train.loss is not a number ('hinge')"),
    ("params: {train.loss: {choices: [hinge]}}", "`choices` must be a list of at least 2 values"),
    ("params: {train.loss: {choices: [hinge, hinge2]}}", "params.train.loss = 'hinge2' is refused by the params: "
                                                        "train.loss must be one of"),
    ("params: {train.g_lr: {low: 1e-5, high: 1e-3}}\nobjectives: [{metric: eval/fid, direction: down}]",
     "direction must be one of ['minimize', 'maximize']"),
    ("params: {train.g_lr: {low: 1e-5, high: 1e-3}}\nobjectives: [{metric: fid, direction: minimize}]",
     "objective metric must be an MLflow metric name"),
    ("params: {train.g_lr: {low: 1e-5, high: 1e-3}}\nobjectives: [{metric: eval/fid, direction: minimize}, "
     "{metric: eval/fid, direction: maximize}]", "names a metric twice"),
])
def test_a_space_that_cannot_work_is_refused_with_one_line_naming_the_file_and_key(default_params, tmp_path, raw,
                                                                                    message):
    path = tmp_path / "space.yaml"
    path.write_text(raw)
    with pytest.raises(ConfigError) as caught:
        space.load(path, default_params)
    text = str(caught.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


def test_a_missing_or_broken_space_file_is_named(default_params, tmp_path):
    with pytest.raises(ConfigError, match="search space .*nowhere.yaml not found"):
        space.load(tmp_path / "nowhere.yaml", default_params)
    (tmp_path / "bad.yaml").write_text("params: {a: [")
    with pytest.raises(ConfigError, match="bad.yaml is not valid YAML"):
        space.load(tmp_path / "bad.yaml", default_params)
    assert yaml.safe_load(SPACE)["params"]
