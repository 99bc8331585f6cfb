"""Where a run came from, as tags: the git commit and whether the code was dirty, the DVC experiment and the
params it changed from its baseline, and the machine kind (torch build, processor, GPU) that did the math.
`ganpipe reproduce` reads these back to decide what it can expect."""
from __future__ import annotations

import dataclasses
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from ganpipe.errors import ConfigError
from ganpipe.keys import CONFIG_TAG, DATA_TAG, TUNE_STUDY_ENV, TUNE_STUDY_TAG, TUNE_TRIAL_ENV, TUNE_TRIAL_TAG


def git_tags(root: Path, outputs: list[str]) -> dict[str, str]:
    """Commit and dirty flag of the code that ran in `root` (the stage's working directory: under
    `dvc exp run --temp/--queue` that is DVC's temporary checkout of the baseline, not the user's workspace).

    Dirty means a tracked file differs from the commit, other than params.yaml (logged in full with the run,
    and `ganpipe reproduce` rebuilds it from there), dvc.lock and the pipeline's own outputs (some are
    git-tracked metrics): the running pipeline rewrites those, which says nothing about the code.
    """

    def git(*args: str) -> str:  # not stripped: porcelain lines start with a status column that may be blank
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
        return out.stdout if out.returncode == 0 else ""

    commit = git("rev-parse", "HEAD").strip() or os.environ.get("DVC_EXP_BASELINE_REV", "")
    skip = ("dvc.lock", "params.yaml", *outputs)
    changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()]
    changed = [p for p in changed if not any(p == s or p.startswith(s.rstrip("/") + "/") for s in skip)]
    return {"git.commit": commit or "unknown", "git.dirty": str(bool(changed)).lower()}


def dvc_tags(cfg: Any = None, root: Path | None = None) -> dict[str, str]:
    """The DVC experiment this stage runs under (`dvc exp run` sets these), or 'workspace' for `dvc repro`.

    Under an experiment, with `cfg` (the Config being run) and `root`: also `dvc.params_changed`, the params
    that differ from the baseline commit's params.yaml, e.g. 'train.g_lr=0.0001; train.loss=bce'.
    """
    tags = {"dvc.exp_name": os.environ.get("DVC_EXP_NAME", "workspace")}
    baseline = os.environ.get("DVC_EXP_BASELINE_REV")
    if baseline:
        tags["dvc.exp_baseline"] = baseline
        if cfg is not None and root is not None:
            tags["dvc.params_changed"] = _params_changed(cfg, root, baseline)
    return tags


def _params_changed(cfg: Any, root: Path, baseline: str) -> str:
    import yaml

    from ganpipe.params.overlays import literal
    from ganpipe.params.overrides import changed_params

    shown = subprocess.run(["git", "show", f"{baseline}:params.yaml"], cwd=root, capture_output=True, text=True)
    if shown.returncode != 0:
        return f"unknown (no params.yaml at {baseline[:7]})"
    try:
        changed = changed_params(cfg, yaml.safe_load(shown.stdout))
    except (ConfigError, yaml.YAMLError) as exc:  # the baseline may predate a params change
        return f"unknown (baseline params do not load: {str(exc)[:200]})"
    return "; ".join(f"{k}={literal(v)}" for k, v in sorted(changed.items())) or "none"  # as `-S` takes them


def machine(device_type: str = "cpu", gpu_name: str | None = None) -> dict[str, str]:
    """What makes results bitwise repeatable besides the code and params (which carry the thread count): the
    torch build and the processor that ran the math. `ganpipe reproduce` expects identical bytes only when
    these match, and falls back to a tolerance otherwise. env.bf16 is whether the device does bf16 natively
    (what train.precision: auto decides by). env.cpu_isa is the vector ISA torch's CPU kernels dispatch to
    (AVX2, AVX512, ...): VMs often show only a family name ("Intel(R) Xeon(R) Processor") for CPUs whose
    kernels, and so whose bytes, differ."""
    import torch

    from ganpipe.gan.devices import bf16_support

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    gpu = gpu_name or (torch.cuda.get_device_name() if device_type == "cuda" else "none")
    return {"env.torch": torch.__version__, "env.cpu": cpu, "env.cpu_isa": torch.backends.cpu.get_cpu_capability(),
            "env.gpu": gpu, "train.device": device_type, "env.bf16": bf16_support(torch.device(device_type))[1]}


def data_tags(info: dict) -> dict[str, str]:
    """What the prepared data is (from its info.json): content hash, source, shape, classes, file counts and the
    transform every image went through."""
    tags = {"data.name": info["dataset"], DATA_TAG: info["sha256"],
            "data.image_shape": "x".join(str(d) for d in info["image_shape"]),
            "data.classes": str(info["num_classes"] if info.get("labelled", True) else "unlabelled"),
            "data.n_train": str(info["n_train"]), "data.n_holdout": str(info["n_holdout"])}
    if "transform" in info:
        tags["data.transform"] = info["transform"]
    if "files" in info:
        tags["data.files"], tags["data.unreadable"] = str(info["files"]), str(info["unreadable"])
    return tags


def stage_tags(cfg: Any) -> dict[str, str]:
    """The git and DVC tags of a run a pipeline stage opens (training or evaluation), from the stage's working
    directory, its outputs (`paths.*`, which do not make the tree dirty) and the repository root; in a
    `ganpipe tune` trial, its study and trial number."""
    from ganpipe.track.store import project_root

    outputs = [str(v) for v in dataclasses.asdict(cfg.paths).values()]
    return {**git_tags(Path.cwd(), outputs), **dvc_tags(cfg, project_root()), **config_tag(cfg.tracking.config),
            **tune_tags()}


def tune_tags() -> dict[str, str]:
    """tune.study and tune.trial of the `ganpipe tune` trial this stage runs in; {} outside one."""
    study, trial = os.environ.get(TUNE_STUDY_ENV), os.environ.get(TUNE_TRIAL_ENV)
    return {TUNE_STUDY_TAG: study, TUNE_TRIAL_TAG: trial} if study and trial else {}


def config_tag(configs: tuple[str, ...]) -> dict[str, str]:
    """Which configs/ overlays a run applied (tracking.config, set by `ganpipe run`): what `ganpipe compare
    --group-by config` and the MLflow UI group runs by."""
    return {CONFIG_TAG: "+".join(configs) or "params.yaml"}


def run_name(tags: dict[str, str], prefix: str, training_name: str | None = None) -> str:
    """A run's name: its DVC experiment's; in the plain workspace `<prefix>-<commit>` (an evaluation run of a
    known training run: `eval-<its name>`)."""
    if tags.get("dvc.exp_name", "workspace") != "workspace":
        return tags["dvc.exp_name"]
    if training_name is not None:
        return f"{prefix}-{training_name}"
    return f"{prefix}-{tags.get('git.commit', 'unknown')[:7]}"
