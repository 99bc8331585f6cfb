"""train.precision: auto picks bf16 exactly where the hardware does it natively (gan/devices.py), an explicit
bf16 on a machine that emulates it runs with one line saying so, and the run records what was used."""
from __future__ import annotations

import pytest
import torch

from ganpipe.gan import devices
from ganpipe.keys import PRECISION_TAG

from helpers import runs, stage, write_params

CPU = torch.device("cpu")


@pytest.fixture
def cpu_flags(monkeypatch):
    """Pretend this CPU has (or lacks) AVX512-BF16 and AMX, whatever it really has."""
    def set_flags(avx512_bf16: bool, amx: bool = False, cap: str | None = None):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
        if cap is None:
            monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
        else:
            monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    return set_flags


@pytest.mark.parametrize("flags, native", [
    (dict(avx512_bf16=True), True),
    (dict(avx512_bf16=False, amx=True), True),
    (dict(avx512_bf16=False), False),  # AVX2-only CPUs (many laptops, older servers)
    (dict(avx512_bf16=True, cap="AVX2"), False),  # oneDNN held below its bf16 kernels: emulated all the same
    (dict(avx512_bf16=True, cap="avx512_core_amx"), True),
])
def test_auto_is_bf16_exactly_where_the_cpu_does_it_natively(cpu_flags, flags, native):
    cpu_flags(**flags)
    auto = devices.resolve_precision("auto", CPU)
    assert auto.used == ("bf16" if native else "fp32")
    assert auto.bf16.startswith("native" if native else "emulated")
    assert auto.warning is None  # auto never picks an emulated bf16
    assert "picked by train.precision: auto" in auto.summary and auto.used in auto.summary
    assert devices.resolve_precision("fp32", CPU).used == "fp32"  # explicit choices are kept
    assert devices.resolve_precision("bf16", CPU).used == "bf16"


def test_an_explicit_bf16_where_it_is_emulated_runs_with_one_line_saying_so(cpu_flags):
    cpu_flags(avx512_bf16=False)
    p = devices.resolve_precision("bf16", CPU)
    assert p.used == "bf16"
    assert p.warning.startswith("note: train.precision: bf16 is emulated on this CPU")
    assert devices.EMULATED_SLOWDOWN in p.warning and "set train.precision: auto" in p.warning
    assert "\n" not in p.warning
    cpu_flags(avx512_bf16=True)
    assert devices.resolve_precision("bf16", CPU).warning is None


@pytest.mark.parametrize("capability, native", [((9, 0), True), ((8, 0), True), ((7, 5), False)])
def test_a_gpu_does_bf16_natively_from_sm_80_on(monkeypatch, capability, native):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    p = devices.resolve_precision("auto", torch.device("cuda"))
    assert p.used == ("bf16" if native else "fp32") and p.device_kind == "GPU"
    assert (devices.resolve_precision("bf16", torch.device("cuda")).warning is None) == native


def test_the_train_stage_says_and_records_what_auto_resolved_to(workdir, capsys, monkeypatch):
    """oneDNN capped at AVX2 emulates bf16 on any CPU, as an AVX2-only machine does: auto trains in fp32 and
    the stage output and the run's tags say so (ganpipe compare and reproduce read the tags)."""
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    write_params(workdir, train={"epochs": 1})
    assert stage("prepare")([]) == 0
    assert stage("train")([]) == 0
    out = capsys.readouterr().out
    assert "precision: fp32 (picked by train.precision: auto; bf16 on this CPU is emulated" in out
    assert "note:" not in out
    (run,) = runs(workdir)
    assert run.data.params["train.precision"] == "auto"
    assert run.data.tags[PRECISION_TAG] == "fp32" and run.data.tags["env.bf16"].startswith("emulated")
    assert 0 < run.data.metrics["time/tick_work_share"] < 1


def test_the_train_stage_warns_once_about_an_emulated_explicit_bf16_and_still_trains(workdir, capsys, monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    write_params(workdir, train={"epochs": 1, "precision": "bf16"}, tracking={"enabled": False})
    assert stage("prepare")([]) == 0
    assert stage("train")([]) == 0
    out = capsys.readouterr().out
    assert out.count("note: train.precision: bf16 is emulated on this CPU") == 1
    assert (workdir / "models" / "generator.safetensors").is_file()
