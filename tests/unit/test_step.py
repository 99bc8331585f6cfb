"""The training loop as a GPU needs it, checked on the CPU: a step that never waits for the device, torch.compile
that trains as eager does, and per-epoch work (grids, checkpoints) on a clock without changing the result."""
from __future__ import annotations

import dataclasses
import math
import os

import pytest
import torch
from torch.overrides import TorchFunctionMode

from ganpipe.data import datasets
from ganpipe.errors import ConfigError
from ganpipe.gan import compiled, devices
from ganpipe.gan import train as train_module
from ganpipe.gan.models import build
from ganpipe.gan.train import fixed_noise, train
from ganpipe.params import config

from helpers import hooked

# Tensor methods that make the host wait for the device (a value or a shape read back); on a GPU any of them
# inside the step loop stalls the launch queue once per step
SYNCING = {"item", "tolist", "__bool__", "__float__", "__int__", "__index__", "numpy", "cpu", "nonzero",
           "masked_select", "unique", "_local_scalar_dense"}


class NoSync(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.seen: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", str(func))
        if name in SYNCING:
            self.seen.append(name)
        return func(*args, **(kwargs or {}))


def tiny(tiny_params, **changes):
    cfg = config.from_dict(tiny_params)
    return cfg.model, dataclasses.replace(cfg.train, threads=1, **changes)


def run(model_cfg, train_cfg, split, **kwargs):
    G, D = build(model_cfg, tuple(split.images.shape[1:]), train_cfg.seed, 10)
    return train(G, D, split.images, train_cfg, model_cfg.z_dim, labels=split.labels, **hooked(kwargs))


@pytest.mark.parametrize("changes", [dict(), dict(loss="wgan-gp", gp_weight=10.0, augment=("translation", "cutout")),
                                     dict(r1_weight=1.0, d_steps=2, ema_decay=None), dict(precision="auto")])
def test_a_step_never_reads_a_value_back_from_the_device(tiny_params, monkeypatch, changes):
    watch = NoSync()

    class Watched(train_module.Step):
        def __call__(self, real, y_real):
            with watch:
                return super().__call__(real, y_real)

    monkeypatch.setattr(train_module, "Step", Watched)
    model_cfg, train_cfg = tiny(tiny_params, **changes)
    result = run(model_cfg, train_cfg, datasets.synthetic(96))
    assert result.steps == 2 * 3 and all(math.isfinite(v) for row in result.history for v in row.values())
    assert watch.seen == [], f"host-device syncs inside the step: {sorted(set(watch.seen))}"


def test_the_sync_check_catches_a_value_read_in_the_step(tiny_params, monkeypatch):
    """The check above can fail: a step that logs its loss with .item() is caught."""
    watch = NoSync()

    class Reading(train_module.Step):
        def __call__(self, real, y_real):
            with watch:
                out = super().__call__(real, y_real)
                out[0].item()
                return out

    monkeypatch.setattr(train_module, "Step", Reading)
    model_cfg, train_cfg = tiny(tiny_params)
    run(model_cfg, train_cfg, datasets.synthetic(64))
    assert "item" in watch.seen


def test_compiled_training_agrees_with_eager(tiny_params):
    """torch.compile (inductor) fuses and reorders float math, so bytes differ; after 6 steps of fp32 training
    every epoch's loss agrees within 1e-3 relative and every generator weight within 1e-3 absolute."""
    model_cfg, train_cfg = tiny(tiny_params, precision="fp32", ema_decay=None)
    split = datasets.synthetic(96)
    eager = run(model_cfg, train_cfg, split)
    fused = run(model_cfg, dataclasses.replace(train_cfg, compile="default"), split)
    for a, b in zip(eager.history, fused.history):
        assert a.keys() == b.keys()
        assert all(math.isclose(a[k], b[k], rel_tol=1e-3, abs_tol=1e-5) for k in a), (a, b)
    for (name, a), b in zip(eager.generator.state_dict().items(), fused.generator.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-3), name


@pytest.mark.parametrize("mode, device, world, message", [
    ("reduce-overhead", "cpu", 1, "records CUDA graphs and needs a CUDA GPU"),
    ("default", "cpu", 2, "is not supported with several processes yet"),
])
def test_compile_modes_a_machine_cannot_run_are_refused_up_front(mode, device, world, message):
    with pytest.raises(ConfigError, match=message):
        compiled.check(mode, torch.device(device), world)
    compiled.check("none", torch.device(device), world)  # none is always fine


def test_compiling_on_a_cpu_without_a_cxx_compiler_names_the_fix(monkeypatch):
    monkeypatch.setattr(compiled.shutil, "which", lambda name: None)
    with pytest.raises(ConfigError, match=r"needs a C\+\+ compiler .* apt-get install g\+\+\) or set train.compile: none"):
        compiled.check("default", torch.device("cpu"), 1)


def test_grids_and_checkpoints_on_a_clock_change_nothing_but_how_often(tiny_params):
    """A long interval draws the grid only before training and after the last epoch, and keeps only the final
    checkpoint; the EMA is re-estimated only for what is shown, so the generator is bitwise the same."""
    model_cfg, every = tiny(tiny_params, ema_decay=0.9, epochs=3, grid_every_s=0, checkpoint_every_s=0)
    rare = dataclasses.replace(every, grid_every_s=3600, checkpoint_every_s=3600)
    split, grid = datasets.synthetic(64), fixed_noise(4, model_cfg.z_dim, 0, 10)
    seen = {}
    for name, cfg in (("every", every), ("rare", rare)):
        grids, saved = [], []
        result = run(model_cfg, cfg, split, log_images=lambda epoch, imgs: grids.append(epoch), grid=grid,
                     save_state=lambda s: saved.append(s["tick"]))
        seen[name] = grids, saved, result
    assert seen["every"][:2] == ([0, 1, 2, 3], [1, 2, 3])
    assert seen["rare"][:2] == ([0, 3], [3])
    a, b = seen["every"][2], seen["rare"][2]
    assert a.history == b.history
    assert all(torch.equal(x, y) for x, y in zip(a.generator.state_dict().values(), b.generator.state_dict().values()))
    assert 0 < b.tick_work_s < b.seconds


@pytest.mark.gpu
@pytest.mark.parametrize("mode", ["none", "reduce-overhead"])
def test_on_a_gpu_the_step_loop_never_synchronises(tiny_params, monkeypatch, mode):
    """CUDA's own sync detector, set to raise, around every step after the first (which may compile)."""
    calls = []

    class Strict(train_module.Step):
        def __call__(self, real, y_real):
            calls.append(1)
            if len(calls) == 1:
                return super().__call__(real, y_real)
            torch.cuda.set_sync_debug_mode("error")
            try:
                return super().__call__(real, y_real)
            finally:
                torch.cuda.set_sync_debug_mode("default")

    monkeypatch.setattr(train_module, "Step", Strict)
    model_cfg, train_cfg = tiny(tiny_params, device="cuda", precision="auto", compile=mode,
                                augment=("translation", "cutout"), r1_weight=1.0)
    result = run(model_cfg, train_cfg, datasets.synthetic(96))
    assert len(calls) == 6 and all(math.isfinite(v) for row in result.history for v in row.values())


@pytest.fixture
def deterministic_state_restored():
    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.utils.deterministic.fill_uninitialized_memory, torch.backends.cudnn.deterministic,
             torch.backends.cudnn.benchmark, os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    yield
    torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
    torch.utils.deterministic.fill_uninitialized_memory = saved[2]
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[3], saved[4]
    os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    if saved[5] is not None:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = saved[5]


def test_deterministic_kernels_are_asked_for_on_a_gpu_and_a_cpu_is_left_alone(deterministic_state_restored):
    """No GPU is needed to set the switches: what train.deterministic sets for a cuda device, and that a CPU run
    sets nothing (its kernels already repeat; the mode would only add work)."""
    devices.set_deterministic(torch.device("cpu"), True)
    assert not torch.are_deterministic_algorithms_enabled() and "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    devices.set_deterministic(torch.device("cuda"), True)
    assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert not torch.utils.deterministic.fill_uninitialized_memory
    devices.set_deterministic(torch.device("cuda"), False)
    assert not torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.deterministic


@pytest.mark.gpu
def test_on_a_gpu_a_deterministic_run_repeats_bitwise(tiny_params, deterministic_state_restored):
    """What docs/reproducing.md claims for a GPU: with train.deterministic (the default), eager training with
    the ops most likely to vary (DiffAugment's indexing backward, cuDNN convolutions, the label embedding, bf16
    autocast) gives the same bytes twice in one process on the same GPU."""
    model_cfg, train_cfg = tiny(tiny_params, device="cuda", precision="auto", deterministic=True,
                                augment=("translation", "cutout"), ema_decay=0.9, epochs=3)
    split = datasets.synthetic(96)
    a, b = run(model_cfg, train_cfg, split), run(model_cfg, train_cfg, split)
    assert a.history == b.history
    for (name, x), y in zip(a.generator.state_dict().items(), b.generator.state_dict().values()):
        assert torch.equal(x, y), name
