"""`ganpipe reproduce`: rebuild a logged result from its git commit and params in a separate git worktree,
re-run the whole pipeline there, and check what comes out against what was logged.

What can be reproduced:
- an MLflow run id: its `git.commit` tag with the params it logged (a DVC experiment's params included);
  expected: the data, classifier and generator hashes it tagged and every eval score and final loss it logged;
- a git commit or ref, or a DVC experiment name (its `refs/exps` commit): that commit's params.yaml; expected:
  every output hash in its dvc.lock and the scores in its metrics files.
  A name with no experiment ref left falls back to the newest MLflow run of that experiment name.

Bitwise identity is expected when the torch build, processor and device match the logged run (the thread
count is a param, so it always matches). Otherwise, or with an explicit tolerance, the scores must agree
within it and differing file hashes are reported but not required.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from ganpipe.console import note
from ganpipe.errors import ConfigError, ReproduceError, TrackingError
from ganpipe.keys import (BEST_GENERATOR_TAG, CLASSIFIER_TAG, DATA_TAG, GENERATOR_TAG, PRECISION_TAG,
                          SCORE_PREFIXES)
from ganpipe.results.verdict import Check, compare, expected_mode, precision_row

# the final epoch's values and the best score during training (train.json, MLflow history)
TRAIN_KEYS = ("loss/d", "loss/g", "d/real", "d/fake", "score/best")
RUN_ID = re.compile(r"[0-9a-f]{32}")


@dataclasses.dataclass
class Target:
    label: str                  # e.g. "MLflow run 3f2a... (bce-short)"
    commit: str
    params: dict | None         # params tree to write into the worktree; None: the commit's own params.yaml
    hashes: dict[str, str]      # expected: output name -> hash
    metrics: dict[str, float]   # expected: metric name -> value
    machine: dict[str, str] | None  # env.* tags, train.device and the resolved precision; None: not recorded
    dirty: bool = False


def git(root: Path, *args: str, check: bool = True) -> str:
    out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if check and out.returncode != 0:
        raise ReproduceError(f"git {' '.join(args)} failed in {root}: {out.stderr.strip()[:500]}")
    return out.stdout.strip() if out.returncode == 0 else ""


def _parse_param(text: str) -> Any:
    return None if text == "None" else yaml.safe_load(text)  # MLflow logged str(value)


def params_from_run(base: dict, logged: dict[str, str]) -> dict:
    """The commit's params tree with every leaf set to the run's logged value. Both must have the same keys:
    a run made with a different params layout than its commit cannot be rebuilt faithfully."""
    from ganpipe.params.typed import flatten

    keys = set(flatten(base))
    if keys != set(logged):
        diff = sorted(keys ^ set(logged))
        raise ReproduceError(f"the run's logged params and its commit's params.yaml have different keys "
                             f"({diff[:5]}): the run was not made from that commit's params layout")
    tree = json.loads(json.dumps(base))
    for key, text in logged.items():
        section, name = key.split(".", 1)
        tree[section][name] = _parse_param(text)
    return tree


def _exp_ref(root: Path, name: str) -> str | None:
    refs = git(root, "for-each-ref", "--sort=-committerdate", "--format=%(refname)", "refs/exps", check=False)
    return next((ref for ref in refs.splitlines() if ref.rsplit("/", 1)[-1] == name), None)


def resolve(target: str, root: Path, tracking_cfg: Any) -> Target:
    """Run id, then git commit/ref, then DVC experiment ref, then MLflow runs named after a DVC experiment."""
    from ganpipe.track import tracking

    if not target.strip() or target.startswith("-") or any(c in target for c in "\n\r\0"):
        raise ReproduceError(f"{target!r} is not a run id, commit or experiment name (it must not be empty, start "
                             f"with '-' or hold line breaks)")
    if RUN_ID.fullmatch(target):
        return from_run(tracking.get_run(target), root)
    commit = git(root, "rev-parse", "--verify", "--quiet", f"{target}^{{commit}}", check=False)
    if commit:
        return from_commit(root, commit, f"git {target}")
    ref = _exp_ref(root, target)
    runs, store = _exp_runs(tracking_cfg, target)
    if ref:
        found = from_commit(root, git(root, "rev-parse", ref), f"DVC experiment {target}")
        if runs is not None and not runs.empty:  # its training run says which machine kind made it
            found.machine = machine_of(tracking.get_run(runs["run_id"].iloc[0])["tags"])
        return found
    if runs is not None and not runs.empty:
        return from_run(tracking.get_run(runs["run_id"].iloc[0]), root)
    raise ReproduceError(f"{target!r} is not an MLflow run id, a git commit or a DVC experiment name{store}. "
                         f"List them with `ganpipe compare`, `git log` or `dvc exp list --all-commits`")


def _exp_runs(tracking_cfg: Any, name: str) -> tuple[Any, str]:
    """The finished MLflow runs of DVC experiment `name`, newest first (None when the store cannot say, with why)."""
    from ganpipe.track import tracking

    try:
        runs = tracking.select_runs(tracking_cfg, {"dvc.exp_name": name})  # quotes in `name` are safe here
        return (runs[runs["status"] == "FINISHED"] if not runs.empty else runs), ""
    except (TrackingError, ConfigError) as exc:
        return None, f" (MLflow: {exc})"


def machine_of(tags: dict[str, str]) -> dict[str, str]:
    """The tags naming the machine kind a run was made on: env.*, train.device and the resolved precision."""
    return {k: v for k, v in tags.items() if k.startswith("env.") or k in ("train.device", PRECISION_TAG)}


def from_run(run: dict, root: Path) -> Target:
    label = f"MLflow run {run['run_id']} ({run['name']})"
    if run["status"] != "FINISHED":
        raise ReproduceError(f"{label} is {run['status']}: only finished runs have results to reproduce")
    tags = run["tags"]
    if tags.get("ganpipe.source") == "external":
        raise ReproduceError(f"{label} scored samples made outside this pipeline (`ganpipe evaluate --samples`): "
                             f"there is no pipeline run to rebuild")
    commit = tags.get("git.commit", "unknown")
    if commit == "unknown":
        raise ReproduceError(f"{label} has no git.commit tag: it was not made by this pipeline inside a git repo")
    if not git(root, "cat-file", "-t", f"{commit}^{{commit}}", check=False):
        raise ReproduceError(f"{label} was made at commit {commit[:12]}, which this repository does not have; "
                             f"fetch it (`git fetch --all`, or from the collaborator who made the run) and retry")
    base = yaml.safe_load(git(root, "show", f"{commit}:params.yaml"))
    hashes = {"data (prepared sha256)": tags.get(DATA_TAG), "classifier": tags.get(CLASSIFIER_TAG),
              "generator": tags.get(GENERATOR_TAG), "best generator": tags.get(BEST_GENERATOR_TAG)}
    metrics = {k: v for k, v in run["metrics"].items() if k.startswith(SCORE_PREFIXES) or k in TRAIN_KEYS}
    machine = machine_of(tags)
    if tags.get("git.dirty") == "true":
        note(f"warning: {label} was made from a working tree with uncommitted changes (git.dirty=true): its "
             f"code was not exactly commit {commit[:12]}, so it may not reproduce", err=True)
    return Target(label, commit, params_from_run(base, run["params"]), {k: v for k, v in hashes.items() if v},
                  metrics, machine if any(k.startswith("env.") for k in machine) else None,
                  dirty=tags.get("git.dirty") == "true")


def _lock_outs(lock_text: str) -> dict[str, str]:
    lock = yaml.safe_load(lock_text) or {}
    return {out["path"]: out.get("md5", "") for stage in lock.get("stages", {}).values() for out in stage.get("outs", [])}


def _metrics_files(read: Any, paths: dict) -> dict[str, float]:
    """eval/*, eval_real/* and the final losses from the metrics JSON files; `read(path)` returns text or ''."""
    from ganpipe.eval.protocol import flat_scores

    out: dict[str, float] = {}
    if text := read(paths["eval_metrics"]):
        out |= flat_scores(json.loads(text))
    if text := read(paths["train_metrics"]):
        out |= {k: v for k, v in json.loads(text).items() if k in TRAIN_KEYS}
    return out


def from_commit(root: Path, commit: str, label: str) -> Target:
    lock = git(root, "show", f"{commit}:dvc.lock", check=False)
    if not lock:
        raise ReproduceError(f"{label} has no dvc.lock: nothing was recorded there to compare with. Reproduce an "
                             f"MLflow run id made from that commit instead")
    paths = yaml.safe_load(git(root, "show", f"{commit}:params.yaml"))["paths"]
    metrics = _metrics_files(lambda p: git(root, "show", f"{commit}:{p}", check=False), paths)
    return Target(label, commit, None, _lock_outs(lock), metrics, None)


def observe(tree: Path, target: Target) -> tuple[dict[str, str], dict[str, float]]:
    """The hashes and metrics the reproduction produced, named as in `target`."""
    from ganpipe.checkpoint import file_sha256

    paths = yaml.safe_load((tree / "params.yaml").read_text())["paths"]
    if target.params is None:
        hashes = _lock_outs((tree / "dvc.lock").read_text())
    else:
        info = json.loads((tree / paths["prepared"] / "info.json").read_text())
        hashes = {"data (prepared sha256)": info["sha256"], "classifier": file_sha256(tree / paths["classifier"]),
                  "generator": file_sha256(tree / paths["generator"])}
        if "generator_best" in paths:  # commits before the best generator have none
            hashes["best generator"] = file_sha256(tree / paths["generator_best"])
    read = lambda p: (tree / p).read_text() if (tree / p).is_file() else ""  # noqa: E731
    return hashes, _metrics_files(read, paths)


def check_paths(params: Any) -> None:
    """Refuse params whose `paths` are absolute or leave the repository: a logged run could otherwise make the
    reproduction read or overwrite files outside its temporary worktree."""
    paths = params.get("paths") if isinstance(params, dict) else None
    if not isinstance(paths, dict):
        raise ReproduceError("the target's params have no `paths` section; it was not made by this pipeline")
    for key, value in paths.items():
        norm = os.path.normpath(str(value))
        if not isinstance(value, str) or os.path.isabs(value) or norm == ".." or norm.startswith(".." + os.sep):
            raise ReproduceError(f"the target's paths.{key} is {value!r}, which is outside the repository; "
                                 f"refusing to reproduce it (only relative paths inside the repository are allowed)")


def lend_data(root: Path, tree: Path, params: dict) -> dict:
    """Make the worktree see the run's source data (data.root), which is usually not in git: a folder inside
    the repository holding files git does not track (your images, torchvision's downloads) is linked into the
    worktree; a relative folder outside the repository is given to the worktree's params as an absolute path.
    A folder fully in git is left as the commit has it. Returns the params to write (a changed copy or the same)."""
    data = params.get("data") if isinstance(params.get("data"), dict) else {}
    source = str(data.get("root") or "data/raw")
    if os.path.isabs(source):
        return params
    norm = os.path.normpath(source)
    if norm == ".." or norm.startswith(".." + os.sep):
        return {**params, "data": {**data, "root": str((root / source).resolve())}}
    mine, theirs = root / norm, tree / norm
    untracked = git(root, "ls-files", "--others", "--ignored", "--exclude-standard", "--", norm, check=False)
    if mine.is_dir() and untracked.strip():
        if theirs.exists():
            shutil.rmtree(theirs) if theirs.is_dir() and not theirs.is_symlink() else theirs.unlink()
        theirs.parent.mkdir(parents=True, exist_ok=True)
        theirs.symlink_to(mine.resolve(), target_is_directory=True)
    return params


def _local_machine(params: dict) -> dict[str, str]:
    from ganpipe.gan import devices
    from ganpipe.track.provenance import machine

    try:
        device = devices.resolve(params["train"]["device"])
        # a commit from before train.precision: auto asked for fp32 or bf16 itself
        precision = devices.resolve_precision(params["train"]["precision"], device).used
    except (ConfigError, KeyError, TypeError) as exc:
        raise ReproduceError(f"cannot reproduce here: {exc}") from None
    return {**machine(device.type, devices.gpu_name(device)), PRECISION_TAG: precision}


def _run_logged(cmd: list[str], cwd: Path, env: dict, log: Path) -> int:
    """Run `cmd`, echoing its output to stderr and keeping it in `log`."""
    with open(log, "w") as f, subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                               stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            f.write(line)
            sys.stderr.write(line)
        return proc.wait()


def reproduce(root: Path, target: Target, tolerance: float | None, keep: bool) -> tuple[list[Check], str]:
    """Check out target.commit in a new git worktree (the user's working tree is never touched), write the
    target's params, run `dvc repro --force` there with that commit's code and a scratch MLflow store, and
    compare. The worktree is removed afterwards unless `keep`, or the pipeline failed (kept to inspect)."""
    params = target.params or yaml.safe_load(git(root, "show", f"{target.commit}:params.yaml"))
    check_paths(params)
    local = _local_machine(params)
    tolerance, mode = expected_mode(target, local, tolerance)
    base = Path(tempfile.mkdtemp(prefix="ganpipe-reproduce-"))
    tree, log = base / "worktree", base / "dvc_repro.log"
    git(root, "worktree", "add", "--detach", "--quiet", str(tree), target.commit)
    keep_tree = keep
    try:
        lent = lend_data(root, tree, params)
        if target.params is not None or lent is not params:
            (tree / "params.yaml").write_text(yaml.safe_dump(lent, sort_keys=False))
        env = {k: v for k, v in os.environ.items() if not k.startswith("DVC_")}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # this venv's packages
        env["PYTHONPATH"] = os.pathsep.join([str(tree / "src"), *filter(None, [env.get("PYTHONPATH")])])  # its code
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{base / 'mlflow.db'}"  # the user's store gets no twin run
        note(f"reproducing {target.label} at commit {target.commit[:12]} in {tree}", err=True)
        code = _run_logged([sys.executable, "-m", "dvc", "repro", "--force", "--no-run-cache"], tree, env, log)
        if code != 0:
            keep_tree = True
            tail = "".join(log.read_text().splitlines(keepends=True)[-15:])
            raise ReproduceError(f"dvc repro failed (exit {code}) in {tree}; kept for inspection (remove it with "
                                 f"`git worktree remove --force {tree}`). Last lines of {log}:\n{tail}")
        hashes, metrics = observe(tree, target)
        if keep:
            note(f"kept {tree} (remove it with `git worktree remove --force {tree}`)", err=True)
    finally:
        if not keep_tree:  # also after Ctrl-C: no stray worktree
            git(root, "worktree", "remove", "--force", str(tree), check=False)
            shutil.rmtree(base, ignore_errors=True)
    return [precision_row(target, local), *compare(target, hashes, metrics, tolerance)], mode
