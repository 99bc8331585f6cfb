"""Config overlays (configs/*.yaml) and `ganpipe run`'s plan: values reach DVC's `-S` unchanged, every mistake is
refused before anything runs, naming the file or the assignment, and --dry-run shows what would run."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ganpipe.cli import experiments, main
from ganpipe.errors import ConfigError
from ganpipe.params import config, overlays
from helpers import ROOT


@pytest.fixture
def project(tmp_path, monkeypatch):
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    return tmp_path


@pytest.mark.parametrize("value", ["hinge", "/abs/path with space/it's", "C:\\data\\x", "null", "5", "a,b", "",
                                   "x=y", 1e-5, 2.0e-4, -3, True, None, [], ["translation", "cutout"], [0.5, 0.999],
                                   float("inf")])
def test_a_value_reaches_dvcs_set_param_unchanged(tmp_path, value):
    """literal() is read back by DVC's own -S code (Hydra's grammar) as the very value the config holds."""
    from dvc.utils.hydra import apply_overrides

    params = tmp_path / "params.yaml"
    params.write_text("train:\n  x: 0\n")
    apply_overrides(params, [f"train.x={overlays.literal(value)}"])
    got = yaml.safe_load(params.read_text())["train"]["x"]
    # DVC writes 1e-05, which PyYAML reads as text; the params loader takes such text for a float field
    assert (float(got) if isinstance(value, float) else got) == value


def test_every_shipped_config_is_commented_and_resolves_through_dvc(project):
    names = sorted(p.stem for p in (project / "configs").glob("*.yaml"))
    assert names == ["cifar10_32", "colour", "folder128_unlabelled", "folder64_unlabelled", "r3gan_cifar",
                     "r3gan_ffhq256", "r3gan_ffhq64", "r3gan_small", "resnet256", "seed_recipe"]
    for name in names:
        assert "#" in (project / "configs" / f"{name}.yaml").read_text(), f"{name}: say why, in comments"
        (command,) = experiments.plan(project, [name], [], None, [], False, False)
        (tree,) = command.resolved
        overlay = overlays.read(project / "configs" / f"{name}.yaml")
        for section, keys in overlay.items():
            assert {k: tree[section][k] for k in keys} == keys  # DVC's result holds every value of the file
        assert tree["tracking"]["config"] == [name]


def test_later_configs_and_set_params_win_and_seeds_name_one_run_each(project):
    (project / "configs" / "short.yaml").write_text("train:\n  epochs: 3  # quick\n")
    commands = experiments.plan(project, ["colour", "short"], ["train.loss=bce"], "mine", [0, 4], False, True)
    assert [c.args[:5] for c in commands] == [["exp", "run", "--temp", "-n", "mine-s0"],
                                              ["exp", "run", "--temp", "-n", "mine-s4"]]
    trees = [c.resolved[0] for c in commands]
    assert [t["train"]["seed"] for t in trees] == [0, 4]
    assert all(t["train"]["epochs"] == 3 and t["train"]["loss"] == "bce" for t in trees)
    assert trees[0]["tracking"]["config"] == ["colour", "short"]
    assert sum(a.startswith("train.epochs=") for a in commands[0].args) == 1  # one assignment per key


def test_a_queued_sweep_expands_to_every_point_and_an_unqueued_one_is_refused(project):
    (command,) = experiments.plan(project, [], ["train.loss=bce,hinge", "train.epochs=1,2"], None, [], True, False)
    assert sorted((t["train"]["loss"], t["train"]["epochs"]) for t in command.resolved) == \
        [("bce", 1), ("bce", 2), ("hinge", 1), ("hinge", 2)]
    with pytest.raises(ConfigError, match="needs --queue"):
        experiments.plan(project, [], ["train.loss=bce,hinge"], None, [], False, False)


@pytest.mark.parametrize("body,configs,sets,message", [
    ("model:\n  g_hiden: [8]\n", ["bad"], [], r"bad.yaml: unknown key model.g_hiden"),
    ("train:\n  epochs: many\n", ["bad"], [], r"bad.yaml: .*train.epochs"),
    ("train:\n  loss: wasserstein\n", ["bad"], [], r"bad.yaml: .*train.loss"),
    ("- train.epochs=3\n", ["bad"], [], "only the keys it changes"),
    ("train: [\n", ["bad"], [], "not a readable YAML file"),
    ("", ["missing"], [], "no config 'missing'.*colour"),
    ("", [], ["train.epoch=3"], r"-S \['train.epoch=3'\]"),
    ("", [], ["train.epochs=-1"], "train.epochs"),
    ("", [], ["train.epochs="], "train.epochs"),
])
def test_mistakes_are_refused_before_anything_runs(project, body, configs, sets, message):
    (project / "configs" / "bad.yaml").write_text(body)
    with pytest.raises(ConfigError, match=message):
        experiments.plan(project, configs, sets, None, [], False, False)


def test_seeds_must_be_distinct_integers():
    assert experiments.parse_seeds("0, 1,2") == [0, 1, 2]
    for bad in ("0,x", "1,1", ","):
        with pytest.raises(ConfigError, match="--seeds"):
            experiments.parse_seeds(bad)


def test_dry_run_prints_the_resolved_params_the_changes_and_the_commands(project, capsys):
    assert main(["run", "colour", "-S", "data.root=/abs/my photos", "--seeds", "0,1", "-n", "c", "--dry-run"]) == 0
    out = capsys.readouterr().out
    resolved = yaml.safe_load(out.split("# what each run changes")[0])
    assert config.from_dict(resolved).data.root == "/abs/my photos"
    assert "train.seed=1" in out and "tracking.config=[colour]" in out
    assert "dvc exp run -n c-s0 -S data.dataset=imagefolder" in out
    assert "-S 'data.root=/abs/my photos'" in out  # quoted for the shell: the line can be pasted
    assert not (project / "dvc.lock").exists()


def test_run_outside_a_project_or_with_a_bad_config_exits_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    assert main(["run", "colour"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no params.yaml") and "Traceback" not in err


def test_seeds_run_one_after_another_with_the_venv_first_and_stop_at_the_first_failure(project, monkeypatch, capsys):
    """Without --queue each seed is one `dvc exp run` in turn, in the project, with this venv's `python` first on
    PATH (the stages' interpreter); a failing one ends the verb with its exit status and runs nothing after it."""
    ran = []

    def fake_run(args, cwd, env):
        ran.append((args, cwd, env["PATH"].split(":")[0]))
        return subprocess.CompletedProcess(args, 3 if len(ran) == 2 else 0)

    monkeypatch.setattr(experiments.subprocess, "run", fake_run)
    assert main(["run", "colour", "--seeds", "0,1,2", "-n", "c"]) == 3
    assert [a[a.index("-n") + 1] for a, _, _ in ran] == ["c-s0", "c-s1"]  # c-s2 never started
    assert all(a[:4] == [sys.executable, "-m", "dvc", "exp"] and "train.seed=" + a[a.index("-n") + 1][-1] in a
               for a, _, _ in ran)
    assert {(Path(cwd).resolve(), first) for _, cwd, first in ran} == {(project.resolve(), str(Path(sys.executable).parent))}
    out = capsys.readouterr().out
    assert "$ dvc exp run -n c-s0" in out and "$ dvc exp run -n c-s1" in out and "c-s2" not in out
