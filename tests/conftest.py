"""Shared fixtures: a tiny, valid params tree for fast runs, the repository root, stages run in-process in a
temporary folder (`workdir`, `stage`, `runs`), a tiny generator file (`generator_file`), the e2e repo (`env`,
`repo`), and the team stack (`team`, `team_work`), each built once per session."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from helpers import ROOT, TINY_OVERRIDES, merged


@pytest.fixture(autouse=True)
def _fixed_threads():
    torch.set_num_threads(1)
    yield


@pytest.fixture(autouse=True)
def _store_env_restored():
    """mlflow.set_tracking_uri also sets $MLFLOW_TRACKING_URI: a test that connects to a store in-process must
    not hand that store to the tests after it (DVC_ROOT likewise)."""
    import os

    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "DVC_ROOT")}
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def default_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.fixture
def tiny_params(default_params) -> dict:
    return merged(default_params, TINY_OVERRIDES)


@pytest.fixture
def workdir(tmp_path, monkeypatch, tiny_params):
    monkeypatch.chdir(tmp_path)
    for var in ("MLFLOW_TRACKING_URI", "DVC_ROOT", "DVC_EXP_NAME", "DVC_EXP_BASELINE_REV"):
        monkeypatch.delenv(var, raising=False)
    # train alone here: the score during training needs the classifier stage first; tests/stages/test_scoring.py
    # and the end-to-end runs score
    params = merged(tiny_params, {"data": {"dataset": "synthetic", "max_images": 300}, "train": {"score": "none"}})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


@pytest.fixture(scope="session")
def generator_file(tmp_path_factory) -> Path:
    """An untrained generator file of the tiny digits model (1x28x28, 10 classes), written once per session."""
    from ganpipe.gan import sampling
    from ganpipe.gan.models import build
    from ganpipe.params import config

    cfg = config.from_dict(merged(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY_OVERRIDES))
    G, _ = build(cfg.model, (1, 28, 28), 0, 10)
    path = tmp_path_factory.mktemp("gen") / "generator.safetensors"
    sampling.save_generator(G, path, cfg.model, (1, 28, 28), 10)
    return path


@pytest.fixture(scope="session")
def env() -> dict:
    from helpers.e2e import make_env

    return make_env()


@pytest.fixture(scope="session")
def repo(tmp_path_factory, env) -> Path:
    """A tiny copy of this project, committed and `dvc repro`-ed once per session (see tests/helpers/e2e.py)."""
    from helpers.e2e import make_repo

    return make_repo(tmp_path_factory.mktemp("e2e") / "repo", env)


@pytest.fixture(scope="session")
def team():
    """`ganpipe team up` on real servers (PostgreSQL, SeaweedFS S3, mlflow server) on 127.0.0.1, free ports;
    (root, what `up` printed). Stopped at the session's end."""
    import shutil
    import tempfile

    from helpers.team import free_base, ganpipe

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
    for stage in ("prepare", "train_classifier"):  # the classifier: the score during training compares with it
        subprocess.run([sys.executable, str(ROOT / "stages" / f"{stage}.py")], cwd=root, check=True, capture_output=True)
    return root


SLOW_TIERS = ("e2e", "team")  # folders of tests/ whose every test runs real pipelines or servers


def pytest_collection_modifyitems(config, items):
    """Tests in tests/e2e and tests/team are marked `slow` by their folder, so no slow module goes unmarked.
    Tests marked `gpu` run only where torch sees a CUDA GPU; elsewhere they are reported as skipped."""
    for item in items:
        if Path(item.path).parent.name in SLOW_TIERS and Path(item.path).parent.parent == ROOT / "tests":
            item.add_marker(pytest.mark.slow)
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def _cpu_line() -> str:
    """The CPU the suite ran on, for CI's log: bitwise results and bf16 speed differ by CPU kind."""
    import os

    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "cpu: unknown (no /proc/cpuinfo)"
    name = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    shown = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    return (f"cpu: {name}; {len(os.sched_getaffinity(0))} usable of {os.cpu_count()}; flags {' '.join(shown)}; "
            f"torch {torch.__version__}")


_tier_seconds: dict[str, float] = {}


def pytest_runtest_logreport(report):
    """Add each test's setup, call and teardown time to its tier (the folder under tests/)."""
    tier = Path(report.fspath).parent.name if report.fspath else "?"
    _tier_seconds[tier] = _tier_seconds.get(tier, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    """One line with the seconds spent per tier, for CONTRIBUTING.md's table (`make check` runs unit alone), and
    one naming the CPU."""
    terminalreporter.write_line(_cpu_line())
    if _tier_seconds:
        parts = ", ".join(f"{tier} {seconds:.0f} s" for tier, seconds in sorted(_tier_seconds.items()))
        terminalreporter.write_line(f"time per tier: {parts}")
