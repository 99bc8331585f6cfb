"""params.yaml mutated at random, several hundred times: wrong types, out-of-range numbers, deleted and unknown
keys and sections, keys that are not names, paths that leave the repository. Each mutated file runs the stages
that depend on what changed (as `dvc repro` would, stopping at the first failure), in-process on tiny data.
Every case must either succeed or stop with exit 1 and exactly one `error: ...` line, no traceback; and no
MLflow run may be left RUNNING. A failure names the case's seed, so it can be replayed alone."""
from __future__ import annotations

import contextlib
import copy
import io
import math
import os
import random
import shutil

import pytest
import torch
import yaml

from helpers import merged, stage

CASES = 300
# the stages that read each params section (dvc.yaml), and everything downstream of each stage
READERS = {"data": "prepare", "classifier": "train_classifier", "model": "train", "train": "train",
           "sample": "sample", "evaluate": "train", "tracking": "train", "paths": "prepare"}  # train: its score
DOWNSTREAM = {"prepare": ["prepare", "train_classifier", "train", "sample", "evaluate"],
              "train_classifier": ["train_classifier", "train", "sample", "evaluate"],
              "train": ["train", "sample", "evaluate"],
              "sample": ["sample", "evaluate"], "evaluate": ["evaluate"]}
WRONG = ["fast", "", [1, 2], {"a": 1}, True, None, [], "2e-4", "x'y\"z"]
NUMBERS = [-1, 0, 1, 3, 2**32, 10**12, -1e-9, 0.5, 1.0, 1e300, math.nan, math.inf]
PATHS = ["", "/tmp/elsewhere", "../up", "a/../../b", "data/prepared/inner", "models/generator.safetensors"]


def mutate(tree: dict, rng: random.Random) -> tuple[str, dict, str]:
    """(what was done, the mutated tree, the section it touched)."""
    out = copy.deepcopy(tree)
    section = rng.choice(sorted(out))
    key = rng.choice(sorted(out[section]))
    kind = rng.choices(["replace", "element", "delete", "unknown", "non-string key", "section"],
                       [70, 8, 8, 6, 4, 4])[0]
    if kind == "element" and isinstance(out[section][key], list) and out[section][key]:
        value = rng.choice(NUMBERS + WRONG)
        out[section][key] = [value] + out[section][key][1:]
        return f"{section}.{key}[0] = {value!r}", out, section
    if kind == "delete":
        del out[section][key]
        return f"delete {section}.{key}", out, section
    if kind == "unknown":
        out[section][key + "_typo"] = 1
        return f"unknown key {section}.{key}_typo", out, section
    if kind == "non-string key":
        out[section][7] = "x"
        return f"key 7 in {section}", out, section
    if kind == "section":
        if rng.random() < 0.5:
            del out[section]
            return f"delete section {section}", out, "paths"
        out["trian"] = {"epochs": 1}
        return "unknown section trian", out, "paths"
    value = rng.choice(NUMBERS + WRONG + (PATHS if section == "paths" else []))
    out[section][key] = value
    return f"{section}.{key} = {value!r}", out, section


def run_chain(names: list[str]) -> tuple[str | None, int, str]:
    """Run stages in order like `dvc repro`: (first failing stage or None, its exit code, its stderr)."""
    for name in names:
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = stage(name)([])
        if code != 0:
            return name, code, err.getvalue()
    return None, 0, ""


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A tiny workspace where every stage has run once, and the MLflow store all cases share."""
    from helpers import ROOT, TINY_OVERRIDES

    folder = tmp_path_factory.mktemp("fuzz")
    params = merged(merged(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY_OVERRIDES),
                    {"data": {"dataset": "synthetic", "max_images": 300}, "train": {"epochs": 1}})
    work = folder / "base"
    work.mkdir()
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    saved = {k: os.environ.pop(k, None) for k in ("MLFLOW_TRACKING_URI", "DVC_ROOT", "DVC_EXP_NAME",
                                                  "DVC_EXP_BASELINE_REV")}
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'store.db'}"
    cwd = os.getcwd()
    try:
        os.chdir(work)
        assert run_chain(DOWNSTREAM["prepare"])[0] is None
        yield folder, params
    finally:
        os.chdir(cwd)
        os.environ.pop("MLFLOW_TRACKING_URI")
        os.environ.update({k: v for k, v in saved.items() if v is not None})


def test_random_params_either_work_or_stop_with_one_clean_message(base):
    from mlflow.tracking import MlflowClient

    folder, params = base
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    outcomes, failures, messages = {"ok": 0, "refused": 0}, [], []
    cwd = os.getcwd()
    for seed in range(CASES):
        what, tree, section = mutate(params, random.Random(seed))
        work = folder / f"case{seed}"
        shutil.copytree(folder / "base", work, ignore=shutil.ignore_patterns("mlruns"))  # artifacts stay put
        (work / "params.yaml").write_text(yaml.safe_dump(tree))
        os.chdir(work)
        try:
            failed, code, err = run_chain(DOWNSTREAM[READERS[section]])
        except BaseException as exc:  # noqa: BLE001  (anything escaping a stage is what this test looks for)
            failures.append(f"case {seed} ({what}): {type(exc).__name__}: {exc}")
            continue
        finally:
            os.chdir(cwd)
            torch.set_num_threads(1)  # a stage set its params' thread count
            shutil.rmtree(work, ignore_errors=True)
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        if failed is None:
            outcomes["ok"] += 1
        elif code == 1 and len(errors) == 1 and "Traceback" not in err:
            outcomes["refused"] += 1
            messages.append(f"{what} -> {failed}: {errors[0][:150]}")
        else:
            failures.append(f"case {seed} ({what}): stage {failed} exit {code}: {err[-500:]}")
        running = [r.info.run_id for e in client.search_experiments()
                   for r in client.search_runs([e.experiment_id], "attributes.status = 'RUNNING'")]
        if running:
            failures.append(f"case {seed} ({what}): MLflow runs left RUNNING: {running}")
            break
    print("\n".join(messages))  # what each refused case was told (pytest -s shows it)
    assert not failures, "\n".join(failures[:20])
    # both paths were taken (most single changes are refused: a section has dozens of keys, each checked)
    assert outcomes["ok"] > CASES // 30 and outcomes["refused"] > CASES // 2, outcomes
