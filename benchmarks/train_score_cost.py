"""What the score during training costs: the same training with train.score on and off, on this machine.

  python benchmarks/train_score_cost.py                                  # the default digits run (params.yaml)
  python benchmarks/train_score_cost.py --config colour --root ../shared/data/cifar10-train-4660 -S train.epochs=10

Prepares the data and trains the evaluation classifier in a temporary folder (as `dvc repro` would), then trains
the GAN four times through the library (gan/train.py): without scores (train.score: none) and with the configured
score, interleaved, keeping the faster run of each (a process's first training is slower: warm-up). Prints the one-time cost of the score's reference, the seconds per score, the share of the training time the
scores took (the number the train stage logs as time/score_share), both runs' images/s, and that the two runs
trained bitwise the same generator.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from ganpipe.data.prepared import holdout_split, read_info, training_split  # noqa: E402
from ganpipe.eval import during  # noqa: E402
from ganpipe.gan.models import build  # noqa: E402
from ganpipe.gan.train import Hooks, train  # noqa: E402
from ganpipe.params import config, overlays, overrides  # noqa: E402
from ganpipe.pipeline import prepare, train_classifier  # noqa: E402
from tables import machine  # noqa: E402


def params(config_name: str | None, root: str | None, sets: list[str]) -> dict:
    tree = yaml.safe_load((ROOT / "params.yaml").read_text())
    if config_name:
        tree = overlays.merge(tree, overlays.read(overlays.find(config_name, ROOT)))
    if root:
        sets = [f"data.root={Path(root).resolve()}", *sets]
    return overrides.apply_overrides(tree, [*sets, "tracking.enabled=false"])


def trained(cfg, info, split, scorer):
    G, D = build(cfg.model, tuple(info["image_shape"]), cfg.train.seed, info["num_classes"])
    train_cfg = cfg.train if scorer is not None else dataclasses.replace(cfg.train, score="none")
    result = train(G, D, split.images, train_cfg, cfg.model.z_dim, labels=split.labels, hooks=Hooks(score=scorer))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", help="a configs/ overlay, e.g. colour")
    ap.add_argument("--root", help="data.root (an image folder)")
    ap.add_argument("-S", dest="sets", action="append", default=[], help="section.key=value")
    args = ap.parse_args()
    tree = params(args.config, args.root, args.sets)
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        (Path(tmp) / "params.yaml").write_text(yaml.safe_dump(tree))
        cfg = config.load("params.yaml")
        prepare.run(cfg)
        if cfg.evaluate.uses("classifier"):
            train_classifier.run(cfg)
        info = read_info(cfg.paths.prepared)
        split, _ = training_split(cfg.paths.prepared)
        start = time.perf_counter()
        scorer = during.for_training(cfg, info["sha256"], holdout_split(cfg.paths.prepared), cfg.model.z_dim,
                                     info["num_classes"] if cfg.model.conditional else None, torch.device("cpu"))
        reference_s = time.perf_counter() - start
        # interleaved, each twice, the faster of each kept: the first training of a process is slower (warm-up)
        runs = [trained(cfg, info, split, s) for s in (None, scorer, None, scorer)]
        plain, scored = (min(runs[i::2], key=lambda r: r.seconds) for i in (0, 1))
    same = all(torch.equal(a, b) for a, b in zip(scored.generator.state_dict().values(),
                                                  plain.generator.state_dict().values()))
    n_scores = len(scored.scores.rows)
    images = scored.images_seen
    print(f"machine: {machine()}")
    print(f"run: {args.config or 'params.yaml'} {' '.join(args.sets)}; {images / 1000:g} kimg, "
          f"{scorer.key} every {cfg.train.score_every_kimg or cfg.train.score_every_s} "
          f"{'kimg' if cfg.train.score_every_kimg else 's'}")
    print(f"reference (once per training): {reference_s:.2f} s ({scorer.ref.what})")
    print(f"scores: {n_scores}, {scored.score_s / max(n_scores, 1):.2f} s each, {scored.score_s:.1f} s in all = "
          f"{scored.score_s / scored.seconds:.1%} of the training's {scored.seconds:.1f} s "
          f"(with the reference: {(scored.score_s + reference_s) / (scored.seconds + reference_s):.1%})")
    print(f"images/s: {images / scored.seconds:,.0f} scored, {images / plain.seconds:,.0f} without scores")
    print(f"best {scored.scores.best['value']:.2f} at {scored.scores.best['kimg']:g} kimg; "
          f"last {scored.scores.rows[-1][scorer.key]:.2f}")
    print(f"the same generator with and without scores: {same}")


if __name__ == "__main__":
    main()
