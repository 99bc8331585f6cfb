"""`ganpipe reproduce`'s pure parts: rebuilding a run's params, choosing exact or tolerant comparison, the
checks and the verdict. The end-to-end reproduction is in test_pipeline_e2e.py."""
import subprocess

import pytest
import torch
import yaml

from ganpipe.keys import PRECISION_TAG
from ganpipe.params import config
from ganpipe.results.reproduce import ReproduceError, Target, check_paths, from_run, params_from_run, resolve
from ganpipe.results.verdict import compare, expected_mode, precision_row, verdict_table

MACHINE = {"env.torch": "2.14.1", "env.cpu": "AMD EPYC", "env.gpu": "none", "train.device": "cpu"}


def target(**kw):
    base = dict(label="run", commit="c" * 40, params=None, hashes={"generator": "aa"},
                metrics={"eval/fid": 20.0, "eval/kid": 0.001, "loss/d": 1.5}, machine=MACHINE)
    return Target(**{**base, **kw})


def test_params_are_rebuilt_from_the_logged_strings(default_params):
    changed = config.from_dict({**default_params, "train": {**default_params["train"], "g_lr": 1e-5, "ema_decay": None,
                                                             "g_betas": [0.5, 0.99], "loss": "bce"}})
    logged = {k: str(v) for k, v in changed.flat().items()}  # how MLflow stores them
    tree = params_from_run(default_params, logged)
    assert config.from_dict(tree).flat() == changed.flat()
    assert yaml.safe_load(yaml.safe_dump(tree)) == tree  # writable as params.yaml
    with pytest.raises(ReproduceError, match="different keys"):
        params_from_run(default_params, {**logged, "train.optimiser": "sgd"})


def test_identical_everything_passes_and_any_difference_fails_in_exact_mode():
    t = target()
    checks = compare(t, {"generator": "aa"}, {"eval/fid": 20.0, "eval/kid": 0.001, "loss/d": 1.5}, None)
    assert all(c.ok and c.result == "identical" for c in checks)
    assert verdict_table(checks, "run", "exact")[1]
    checks = compare(t, {"generator": "aa"}, {"eval/fid": 20.000001, "eval/kid": 0.001, "loss/d": 1.5}, None)
    text, ok = verdict_table(checks, "run", "exact")
    assert not ok and "NOT REPRODUCED: 1 of 4 checks fail (eval/fid)" in text
    checks = compare(t, {}, {"eval/fid": 20.0, "eval/kid": 0.001}, None)  # an output and a metric went missing
    assert [c.result for c in checks if not c.ok] == ["missing", "missing"]


def test_tolerance_gates_on_scores_only():
    t = target()
    checks = {c.name: c for c in compare(t, {"generator": "bb"}, {"eval/fid": 21.5, "eval/kid": 0.008, "loss/d": 9.0}, 0.1)}
    assert checks["eval/fid"].ok and checks["eval/fid"].result == "within 10%"
    assert checks["eval/kid"].ok  # near zero: the absolute slack applies
    assert checks["generator"].ok and not checks["generator"].gating and checks["generator"].result == "differs (not required)"
    assert checks["loss/d"].ok and not checks["loss/d"].gating
    assert verdict_table(list(checks.values()), "run", "tol")[1]
    (fid,) = [c for c in compare(t, {"generator": "aa"}, {"eval/fid": 25.0}, 0.1) if c.name == "eval/fid"]
    assert not fid.ok and fid.result == "differs (allowed: within 10%)"


def test_exact_only_on_the_same_machine_kind():
    assert expected_mode(target(), MACHINE, None)[0] is None
    tolerance, why = expected_mode(target(), {**MACHINE, "train.device": "cuda", "env.gpu": "NVIDIA H200"}, None)
    assert tolerance == 0.1 and "train.device: cpu -> cuda" in why
    assert expected_mode(target(machine=None), MACHINE, None)[0] is None  # not recorded: say so, expect exact
    assert expected_mode(target(), MACHINE, 0.02) == (0.02, "tolerance 2% as asked (each score by its kind)")


def test_the_vector_isa_is_part_of_the_machine_kind():
    """Two CPUs that a VM names alike ("Intel(R) Xeon(R) Processor") but whose kernels dispatch to other ISAs
    compute other bytes: a tolerance, naming the ISA. The tag is what torch dispatches to on this machine."""
    from ganpipe.track.provenance import machine

    here = machine()
    assert here["env.cpu_isa"] == torch.backends.cpu.get_cpu_capability() and here["env.cpu_isa"]
    made = {**MACHINE, "env.cpu": "Intel(R) Xeon(R) Processor", "env.cpu_isa": "AVX512"}
    tolerance, why = expected_mode(target(machine=made), {**made, "env.cpu_isa": "AVX2"}, None)
    assert tolerance == 0.1 and "env.cpu_isa: AVX512 -> AVX2" in why
    assert expected_mode(target(machine=made), made, None)[0] is None


def test_the_resolved_precision_is_part_of_the_machine_kind():
    """train.precision: auto trains in bf16 on one CPU and fp32 on another: other bytes, so a tolerance. A run
    from before the precision and env.bf16 tags is judged by the tags it has."""
    made = {**MACHINE, "env.bf16": "native (AVX512-BF16)", PRECISION_TAG: "bf16"}
    here = {**MACHINE, "env.bf16": "emulated (this CPU has neither AVX512-BF16 nor AMX)", PRECISION_TAG: "fp32"}
    tolerance, why = expected_mode(target(machine=made), here, None)
    assert tolerance == 0.1 and f"{PRECISION_TAG}: bf16 -> fp32" in why and "env.bf16: native" in why
    assert expected_mode(target(machine=made), made, None)[0] is None
    assert expected_mode(target(machine=MACHINE), here, None)[0] is None  # an older run: the tags it recorded
    row = precision_row(target(machine=made), here)  # shown in the verdict table, never deciding it
    assert (row.logged, row.reproduced, row.result, row.gating) == ("bf16", "fp32", "differs (another machine kind)",
                                                                    False)
    assert precision_row(target(machine=made), made).result == "identical"
    assert precision_row(target(machine=MACHINE), made).result == "not recorded"


def test_a_gpu_run_without_deterministic_kernels_is_judged_with_the_tolerance(default_params):
    """Same GPU kind, but train.deterministic: false lets atomics reorder sums: bytes cannot be asked for."""
    gpu = {**MACHINE, "env.gpu": "NVIDIA H200", "train.device": "cuda"}
    loose = {**default_params, "train": {**default_params["train"], "deterministic": False}}
    tolerance, why = expected_mode(target(machine=gpu, params=loose), gpu, None)
    assert tolerance == 0.1 and "train.deterministic: false" in why
    assert expected_mode(target(machine=gpu, params=default_params), gpu, None)[0] is None  # deterministic: exact
    assert expected_mode(target(machine=MACHINE, params=loose), MACHINE, None)[0] is None  # a CPU always repeats


@pytest.fixture
def git_repo(tmp_path, default_params):
    def git(*args):
        return subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(default_params))
    git("add", "params.yaml")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "base")
    return tmp_path, git("rev-parse", "HEAD")


def run_record(commit, default_params, **kw):
    params = {k: str(v) for k, v in config.from_dict(default_params).flat().items()}
    tags = {"git.commit": commit, "git.dirty": "false", "ganpipe.generator_sha256": "aa", **MACHINE}
    return {"run_id": "r" * 32, "name": "n", "status": "FINISHED", "params": params, "tags": tags,
            "metrics": {"eval/fid": 1.0, "time/train_s": 3.0}, **kw}


def test_a_dvc_experiment_is_judged_on_the_machine_kind_its_training_run_recorded(git_repo, default_params,
                                                                                   monkeypatch):
    import pandas as pd

    from ganpipe.track import tracking

    root, _ = git_repo
    lock = {"stages": {"train": {"outs": [{"path": "models/generator.safetensors", "md5": "ab"}]}}}
    (root / "dvc.lock").write_text(yaml.safe_dump(lock))
    run = lambda *a: subprocess.run(["git", *a], cwd=root, check=True, capture_output=True, text=True)  # noqa: E731
    run("add", "dvc.lock")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "exp")
    run("update-ref", "refs/exps/ab/cd/my-exp", "HEAD")  # where `dvc exp run -n my-exp` keeps an experiment
    record = run_record("c" * 40, default_params)
    cfg = config.from_dict(default_params).tracking
    monkeypatch.setattr(tracking, "select_runs", lambda c, tags: pd.DataFrame(
        [{"run_id": record["run_id"], "status": "FINISHED"}] if tags == {"dvc.exp_name": "my-exp"} else []))
    monkeypatch.setattr(tracking, "get_run", lambda run_id: record)
    found = resolve("my-exp", root, cfg)
    assert found.label == "DVC experiment my-exp" and found.hashes == {"models/generator.safetensors": "ab"}
    assert found.machine == MACHINE  # not "not recorded": the run was found by its dvc.exp_name tag
    monkeypatch.setattr(tracking, "select_runs", lambda c, tags: pd.DataFrame([]))
    assert resolve("my-exp", root, cfg).machine is None  # no such run (or no store): not recorded, as before


def test_a_dirty_run_warns_and_unfinished_or_foreign_runs_are_refused(git_repo, default_params, capsys):
    root, commit = git_repo
    record = run_record(commit, default_params)
    t = from_run(record, root)
    assert t.commit == commit and t.metrics == {"eval/fid": 1.0} and t.hashes == {"generator": "aa"}
    assert "warning" not in capsys.readouterr().err
    record["tags"]["git.dirty"] = "true"
    assert from_run(record, root).dirty
    assert "uncommitted changes (git.dirty=true)" in capsys.readouterr().err
    with pytest.raises(ReproduceError, match="is FAILED: only finished runs"):
        from_run(run_record(commit, default_params, status="FAILED"), root)
    foreign = run_record("f" * 40, default_params)
    with pytest.raises(ReproduceError, match="which this repository does not have; fetch it"):
        from_run(foreign, root)


def test_the_command_exits_non_zero_when_it_does_not_reproduce(tmp_path, default_params, monkeypatch, capsys):
    from ganpipe import cli
    from ganpipe.results import reproduce as rep

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(default_params))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(rep, "resolve", lambda *a: target())
    outcome = {"eval/fid": 20.0, "eval/kid": 0.001, "loss/d": 1.5}
    monkeypatch.setattr(rep, "reproduce", lambda root, t, tol, keep: (compare(t, {"generator": "aa"}, outcome, tol), "exact"))
    assert cli.main(["reproduce", "x", "--out", "r.json"]) == 0
    assert "REPRODUCED: 4 checks pass" in capsys.readouterr().out
    outcome["loss/d"] = 1.25
    assert cli.main(["reproduce", "x", "--out", "r.json"]) == 1
    assert "NOT REPRODUCED: 1 of 4 checks fail (loss/d)" in capsys.readouterr().out
    assert '"reproduced": false' in (tmp_path / "r.json").read_text()
    assert cli.main(["reproduce", "x", "--tolerance", "2"]) == 1
    assert "--tolerance must be in [0, 1)" in capsys.readouterr().err


def test_tolerance_fits_each_kind_of_score():
    """A dropped class or nine points of class agreement never pass as "within 10%"; FID a few % off does."""
    logged = {"eval/classes_covered": 10.0, "eval/class_agreement": 0.98, "eval/is": 9.40, "eval/kl_uniform": 0.0002,
              "eval/fid": 18.7, "eval/precision": 0.83, "eval/is_split_std": 0.05}
    t = target(metrics=logged, hashes={})

    def verdicts(**new):
        return {c.name: c for c in compare(t, {}, {**logged, **new}, 0.1)}

    same_machine_noise = verdicts(**{"eval/fid": 19.3, "eval/is": 9.33, "eval/class_agreement": 0.975,
                                     "eval/kl_uniform": 0.003, "eval/precision": 0.82, "eval/is_split_std": 0.09})
    assert all(c.ok for c in same_machine_noise.values()), same_machine_noise
    assert same_machine_noise["eval/is_split_std"].gating is False  # a spread is shown, not required
    one_class_dropped = verdicts(**{"eval/classes_covered": 9.0, "eval/is": 8.50, "eval/kl_uniform": 0.105})
    assert [n for n, c in one_class_dropped.items() if not c.ok] == ["eval/classes_covered", "eval/is",
                                                                     "eval/kl_uniform"]
    assert one_class_dropped["eval/classes_covered"].result == "differs (allowed: equal (a count))"
    nine_points = verdicts(**{"eval/class_agreement": 0.89})["eval/class_agreement"]
    assert not nine_points.ok and nine_points.result == "differs (allowed: within 2 points)"
    assert not verdict_table(list(verdicts(**{"eval/class_agreement": 0.89}).values()), "run", "tol")[1]


def test_paths_outside_the_worktree_are_refused(default_params):
    check_paths(default_params)
    for bad in ("/etc/passwd", "../../outside.json", "models/../../up.json"):
        with pytest.raises(ReproduceError, match="outside the repository; refusing to reproduce it"):
            check_paths({**default_params, "paths": {**default_params["paths"], "eval_metrics": bad}})
