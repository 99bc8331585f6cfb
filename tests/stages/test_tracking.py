import subprocess

import yaml

from ganpipe.params import config, overrides
from ganpipe.track import provenance


def test_changed_params_compares_typed_values(default_params):
    current = config.from_dict({**default_params, "train": {**default_params["train"], "g_lr": 1e-4,
                                                             "loss": "bce"}})
    baseline = {**default_params, "train": {**default_params["train"], "g_lr": "2e-4"}}  # a string in YAML
    assert overrides.changed_params(current, baseline) == {"train.g_lr": 1e-4, "train.loss": "bce"}


def test_experiment_tags_name_the_params_changed_from_the_baseline(tmp_path, monkeypatch, default_params):
    def git(*args):
        return subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True, text=True).stdout

    git("init", "-q")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(default_params))
    git("add", "params.yaml")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "base")
    baseline = git("rev-parse", "HEAD").strip()
    changed = {**default_params, "train": {**default_params["train"], "epochs": 3}}
    monkeypatch.setenv("DVC_EXP_NAME", "short-run")
    monkeypatch.setenv("DVC_EXP_BASELINE_REV", baseline)
    tags = provenance.dvc_tags(config.from_dict(changed), tmp_path)
    assert tags == {"dvc.exp_name": "short-run", "dvc.exp_baseline": baseline,
                    "dvc.params_changed": "train.epochs=3"}
    monkeypatch.setenv("DVC_EXP_BASELINE_REV", "0" * 40)  # a commit this repo does not have
    assert provenance.dvc_tags(config.from_dict(changed), tmp_path)["dvc.params_changed"].startswith("unknown")
    monkeypatch.delenv("DVC_EXP_NAME")
    monkeypatch.delenv("DVC_EXP_BASELINE_REV")
    assert provenance.dvc_tags(config.from_dict(changed), tmp_path) == {"dvc.exp_name": "workspace"}


def test_dirty_means_code_changed_not_params_or_outputs(tmp_path):
    def git(*args):
        return subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True, text=True).stdout

    for name in ("params.yaml", "train.py", "metrics.json"):
        (tmp_path / name).write_text("a\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "base")
    head = git("rev-parse", "HEAD").strip()
    (tmp_path / "params.yaml").write_text("b\n")  # as `dvc exp run -S` does; the params are logged in full
    (tmp_path / "metrics.json").unlink()  # an output DVC removes before the stage rewrites it (" D metrics.json")
    assert provenance.git_tags(tmp_path, ["metrics.json"]) == {"git.commit": head, "git.dirty": "false"}
    (tmp_path / "train.py").write_text("b\n")
    assert provenance.git_tags(tmp_path, ["metrics.json"])["git.dirty"] == "true"
