"""Streamed training batches (data/stream.py): the same bytes in the same order as indexing the split in memory,
from a memory-mapped file with its pages requested ahead, so a training streamed from disk is bitwise the one
trained in memory, resumes included."""
import dataclasses

import pytest
import torch

from ganpipe.data import datasets, stream
from ganpipe.data.prepared import TRAIN_FILE, save_split, training_split
from ganpipe.errors import DataError
from ganpipe.gan.models import build
from ganpipe.gan.train import train
from ganpipe.params import config

from helpers import hooked, interrupted


@pytest.fixture
def on_disk(tmp_path, monkeypatch):
    """A colour training split written as `prepare` writes it, read back memory-mapped (a budget of 0 MiB)."""
    split = datasets.synthetic(160, size=32, channels=3)
    save_split(split, tmp_path / TRAIN_FILE)
    monkeypatch.setenv("GANPIPE_DATA_BUDGET_MB", "0")
    mapped, rows = training_split(tmp_path)
    assert rows is not None and rows.row_bytes == 3 * 32 * 32
    return split, mapped, rows


def _collect(feed, part):
    out = [(i.clone(), lab.clone()) for i, lab in feed.batches(part)]
    feed.close()
    return out


@pytest.mark.parametrize("mine", [slice(0, 32), slice(16, 32)])  # one process; the second of two
def test_streamed_batches_are_the_indexed_ones(on_disk, mine):
    split, mapped, rows = on_disk
    perm = torch.randperm(160, generator=torch.Generator().manual_seed(3))
    part = stream.Pass(perm, 1, 5, 32, mine)  # a pass resumed at its second batch
    cpu = torch.device("cpu")
    expected = _collect(stream.Indexed(split.images, split.labels, cpu), part)
    got = _collect(stream.Streamed(mapped.images, mapped.labels, cpu, rows, workers=2, depth=3), part)
    assert len(got) == len(expected) == 4
    for (a, la), (b, lb) in zip(expected, got):
        assert torch.equal(a, b) and torch.equal(la, lb) and a.shape[0] == mine.stop - mine.start


def test_a_pass_left_early_drops_its_prefetched_batches(on_disk):
    _, mapped, rows = on_disk
    feed = stream.Streamed(mapped.images, mapped.labels, torch.device("cpu"), rows, depth=4)
    batches = feed.batches(stream.Pass(torch.arange(160), 0, 5, 32, slice(0, 32)))
    first, _ = next(batches)
    assert torch.equal(first, mapped.images[:32])
    batches.close()  # as an exception in the step does: the pending gathers are cancelled, none is waited for
    feed.close()
    assert feed.fd is None


def test_the_stream_setting_is_checked(monkeypatch):
    monkeypatch.setenv("GANPIPE_STREAM", "sometimes")
    with pytest.raises(DataError, match=r"GANPIPE_STREAM must be one of \['auto', 'on', 'off'\], got 'sometimes'"):
        stream.mode()


def _cfgs(tiny_params, **changes):
    cfg = config.from_dict(tiny_params)
    return cfg.model, dataclasses.replace(cfg.train, threads=1, augment=("translation",), **changes)


def test_training_streamed_from_disk_is_bitwise_the_one_in_memory(on_disk, tiny_params, tmp_path, monkeypatch):
    split, mapped, rows = on_disk
    model_cfg, train_cfg = _cfgs(tiny_params, epochs=None, kimg=0.48, tick_kimg=0.096)  # ticks inside passes

    def run(mcfg, tcfg, data, **kwargs):
        G, D = build(mcfg, (3, 32, 32), tcfg.seed, 10)
        return G, train(G, D, data.images, tcfg, mcfg.z_dim, labels=data.labels, **hooked(kwargs))

    monkeypatch.setenv("GANPIPE_STREAM", "off")
    G_mem, in_memory = run(model_cfg, train_cfg, split)
    monkeypatch.setenv("GANPIPE_STREAM", "auto")  # memory-mapped: auto streams
    G_disk, streamed = run(model_cfg, train_cfg, mapped, rows=rows)
    assert streamed.history == in_memory.history
    assert all(torch.equal(a, b) for a, b in zip(G_mem.state_dict().values(), G_disk.state_dict().values()))
    # killed inside a pass and resumed, still streamed: the same weights again
    state = interrupted(lambda *a, **k: run(*a, rows=rows, **k), model_cfg, train_cfg, mapped,
                        tmp_path / "train.pt", at=4)
    assert state["steps"] % 5
    G_resumed, resumed = run(model_cfg, train_cfg, mapped, rows=rows, resume_from=state)
    assert resumed.history == in_memory.history
    assert all(torch.equal(a, b) for a, b in zip(G_mem.state_dict().values(), G_resumed.state_dict().values()))
