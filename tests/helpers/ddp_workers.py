"""What the spawned processes of tests/stages/test_distributed.py run: train() on one rank of a gloo group, with a hook
that compares every rank's networks after every step. Module-level functions, so `spawn` can import them."""
from __future__ import annotations

from pathlib import Path

import torch

from ganpipe.data import datasets
from ganpipe.distributed.group import SOLO, Replicas
from ganpipe.gan.models import build
from ganpipe.gan.train import Hooks, train
from ganpipe.params import config


def flat(*modules) -> torch.Tensor:
    """All parameters and buffers, as one float64 vector."""
    return torch.cat([t.detach().double().flatten() for m in modules for t in m.state_dict().values()])


def run(params: dict, replicas: Replicas, n_images: int, record: dict) -> dict:
    cfg = config.from_dict(params)
    split = datasets.synthetic(n_images, size=cfg.data.image_size or 28, channels=cfg.data.channels or 1)
    G, D = build(cfg.model, tuple(split.images.shape[1:]), cfg.train.seed, 10)
    first: dict = {}

    def check(step: int, G, D, ema) -> None:
        # parameters only for G (its batch-norm running statistics are each rank's own until the next forward
        # syncs rank 0's); D's parameters and buffers (spectral-norm vectors); the EMA network whole
        mine = [torch.cat([p.detach().double().flatten() for p in G.parameters()]), flat(D)]
        mine += [flat(ema.model)] if ema is not None else []
        if not first:
            first["G"] = {k: v.clone() for k, v in G.state_dict().items()}
        gathered = replicas.gather([t.sum().item() for t in mine])  # cheap fingerprint first
        full = [replicas.gather(t) for t in mine] if replicas.world > 1 else [[t] for t in mine]
        record["steps"] = step
        record["mismatches"] = record.get("mismatches", 0) + sum(
            any(not torch.equal(ts[0], other) for other in ts[1:]) for ts in full)
        record["fingerprints_agree"] = record.get("fingerprints_agree", True) and all(g == gathered[0]
                                                                                   for g in gathered)

    result = train(G, D, split.images, cfg.train, cfg.model.z_dim, labels=split.labels,
                   replicas=replicas, hooks=Hooks(after_step=check))
    return {"history": result.history, "G": {k: v.clone() for k, v in result.generator.state_dict().items()},
            "G_first": first["G"], **record}


def worker(rank: int, world: int, init_file: str, params_list: list[dict], n_images: int, out: str,
           backend: str = "gloo") -> None:
    """Each params tree in turn on this rank (one process start for all of them); results to out/rank{r}.pt.
    On a GPU every rank uses GPU 0 (the lent machines have one): gloo can share it, NCCL only with 1 rank."""
    torch.set_num_threads(1)
    torch.distributed.init_process_group(backend, init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        results = [run(p, Replicas(rank, world, 0, backend), n_images, {}) for p in params_list]
        torch.save(results, Path(out) / f"rank{rank}.pt")
    finally:
        torch.distributed.destroy_process_group()


def single(params: dict, n_images: int) -> dict:
    return run(params, SOLO, n_images, {})


def with_train(params: dict, **changes) -> dict:
    return {**params, "train": {**params["train"], **changes}}
