"""The training loop on several processes (gloo on the CPU, real process groups, spawned processes): every rank
holds the same networks after every step, and synchronised batch norm makes 2 processes follow 1 process."""
from __future__ import annotations

import math

import pytest
import torch
import torch.multiprocessing as mp

from ganpipe.distributed.group import Replicas

from helpers import R3GAN_TINY, ddp_workers

N_IMAGES = 128  # 4 global batches of 32, 16 images per rank


def spawn(tmp_path, params_list: list[dict], world: int = 2, backend: str = "gloo") -> list[list[dict]]:
    """Run params_list on `world` ranks; per rank, the results of each params tree."""
    mp.start_processes(ddp_workers.worker, args=(world, str(tmp_path / "init"), params_list, N_IMAGES,
                                                 str(tmp_path), backend), nprocs=world, start_method="spawn")
    return [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(world)]


def test_part_splits_every_batch_into_disjoint_equal_slices():
    parts = [Replicas(r, 4).part(32) for r in range(4)]
    covered = [i for p in parts for i in range(32)[p]]
    assert covered == list(range(32))


def test_ranks_hold_identical_networks_after_every_step(tmp_path, tiny_params):
    hard = ddp_workers.with_train(tiny_params, threads=1, augment=["translation", "cutout"], r1_weight=0.5,
                                  ema_decay=0.99, d_steps=2)
    gp = ddp_workers.with_train(tiny_params, threads=1, loss="wgan-gp", gp_weight=10.0, precision="fp32")
    # R3GAN with adaptive ADA (p from every rank's D(real) signs: one all-reduce every 4 steps) and its schedules
    r3gan = {**ddp_workers.with_train(tiny_params, threads=1, loss="rpgan", gamma=0.5, augment=["ada"], ada_p=0.2,
                                      precision="fp32", schedule_images=64, lr_end=1e-4, gamma_end=0.1,
                                      ema_decay=None, ema_halflife=0.0, ema_halflife_end=100.0),
             "data": {**tiny_params["data"], "image_size": 32, "channels": 3},
             "model": {**tiny_params["model"], **R3GAN_TINY}}  # R3GAN's R1 + R2 from one pass of D over both halves
    ranks = spawn(tmp_path, [hard, gp, r3gan])
    for case in range(3):
        r0, r1 = ranks[0][case], ranks[1][case]
        steps = 2 * N_IMAGES // 32  # epochs x global batches
        assert r0["steps"] == r1["steps"] == steps
        assert r0["mismatches"] == 0 and r0["fingerprints_agree"]  # G, D and the EMA, bitwise, every step
        assert r0["history"] == r1["history"]  # losses are means over the global batch on every rank
        assert all(torch.equal(r0["G"][k], r1["G"][k]) for k in r0["G"])
    assert len({row["augment/p"] for row in ranks[0][2]["history"]}) > 1  # ADA's p moved, alike on both ranks


def test_sync_batchnorm_makes_two_processes_follow_one(tmp_path, tiny_params):
    """Same global batch, same noise: with synchronised batch norm the only difference left between 1 and 2
    processes is float summation order; without it, batch norm sees 16-image slices instead of 32 images."""
    base = ddp_workers.with_train(tiny_params, threads=1, precision="fp32", ema_decay=None)
    synced = ddp_workers.with_train(base, sync_batchnorm=True)
    one = ddp_workers.single(base, N_IMAGES)
    two_plain, two_synced = spawn(tmp_path, [base, synced])[0]

    def gap(result: dict, key: str) -> float:
        return max((result[key][k].float() - one[key][k].float()).abs().max().item() for k in one[key])

    # measured: 7e-7 synced (float32 round-off), 1.2e-2 after one step and 2.6e-2 after 8 without
    assert gap(two_synced, "G_first") < 1e-5 < 1e-3 < gap(two_plain, "G_first")
    assert gap(two_synced, "G") < 1e-5 < 1e-3 < gap(two_plain, "G")
    loss_gap = lambda r: max(abs(a["loss/d"] - b["loss/d"]) for a, b in zip(r["history"], one["history"]))  # noqa
    assert loss_gap(two_synced) < 1e-5 < loss_gap(two_plain)


@pytest.mark.gpu
@pytest.mark.parametrize("backend, world", [("nccl", 1), ("gloo", 2)])
def test_distributed_training_on_the_gpu(tmp_path, tiny_params, backend, world):
    """NCCL with one process (the lent machines have one GPU), and 2 gloo ranks sharing the GPU: the DDP path on
    CUDA tensors, bf16, with the penalties and DiffAugment; the ranks still agree bitwise after every step."""
    params = ddp_workers.with_train(tiny_params, threads=1, device="cuda", precision="bf16", r1_weight=0.5,
                                    augment=["translation", "cutout"], sync_batchnorm=True)
    ranks = spawn(tmp_path, [params], world, backend)
    assert all(r[0]["mismatches"] == 0 and r[0]["steps"] == 2 * N_IMAGES // 32 for r in ranks)
    assert all(math.isfinite(v) for row in ranks[0][0]["history"] for v in row.values())


@pytest.mark.gpu
def test_more_nccl_processes_than_gpus_is_refused(tiny_params):
    from ganpipe.distributed import launch
    from ganpipe.errors import ConfigError
    from ganpipe.params import config

    cfg = config.from_dict(ddp_workers.with_train(tiny_params, device="cuda", processes=torch.cuda.device_count() + 1,
                                                  batch_size=64))
    with pytest.raises(ConfigError, match="NCCL needs a GPU of its own per process"):
        launch.check(cfg.train, 0)


@pytest.mark.parametrize("text, lost", [
    ("[/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:545] Read error [127.0.0.1]:62155: Connection reset by "
     "peer", True),
    ("NCCL error in: ProcessGroupNCCL.cpp:1970, remote process exited or there was a network error", True),
    ("Connection closed by peer [127.0.0.1]:29500", True),
    ("mat1 and mat2 shapes cannot be multiplied (64x10 and 12x3)", False),  # a bug: its traceback stays
])
def test_peer_lost_tells_a_dead_peer_from_a_bug(text, lost):
    """A rank whose collective fails because another rank died stops with one note (exit LOST_PEERS_EXIT, which
    the launcher does not count as a cause); any other error keeps its traceback."""
    from ganpipe.distributed.group import peer_lost

    assert peer_lost(RuntimeError(text)) is lost
    assert peer_lost(torch.distributed.DistNetworkError("anything"))
