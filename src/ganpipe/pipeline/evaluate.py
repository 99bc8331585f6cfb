"""Stage `evaluate`: the samples scored against the real data in the feature spaces evaluate.features names,
written to paths.eval_metrics and logged to MLflow on the run its provenance names (results/landing.py): the
training run when it logged exactly these inputs, else a linked evaluation run.

- classifier space: against the held-out split (and the held-out split against the training split: the
  ceiling), with the evaluation classifier;
- Inception space (eval/standard.py): against the training split's features from the `reference` stage, as
  papers do; only the samples' own features are computed here.
Copy detection runs in each space; the closest sample/training-image pairs are drawn to paths.copy_grid.

It reads only what dvc.yaml declares: the samples file (which records its generator and sample params), the
classifier file (which records its params), the prepared folder (which records the data hash) and the
Inception reference."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from ganpipe.checkpoint import file_sha256
from ganpipe.console import note
from ganpipe.data.images import make_grid, save_png
from ganpipe.data.prepared import read_prepared
from ganpipe.data.samples import load_samples
from ganpipe.data.split import Split
from ganpipe.errors import ConfigError
from ganpipe.eval import classifier, copying, identity, inception, protocol, reference, standard
from ganpipe.files import class_counts_csv, write_json, write_text
from ganpipe.params import sizes
from ganpipe.params.config import Config, EvaluateConfig
from ganpipe.results import landing
from ganpipe.track import provenance, tracking

PAIRS = 8  # closest sample / training-image pairs drawn


def score(clf_path: Path, images: torch.Tensor, requested: torch.Tensor | None, train: Split, holdout: Split,
          info: dict, cfg: Config, what: str) -> tuple[dict, dict, torch.Tensor]:
    """(every score of `images` in the configured spaces with their protocols, timings, closest-pairs grid
    images). `what` names the images in a refusal. Timings stay out of the result: its bytes must repeat."""
    ev = cfg.evaluate
    # not the machine's count: a large-K matmul (the classifier's last layer) sums in an order set by the thread
    # count, and the scores must repeat on a clone with more cores (tests/stages/test_threads.py)
    torch.set_num_threads(ev.threads)
    start = time.perf_counter()
    result: dict = {}
    timings: dict[str, float] = {}
    nearest = None
    # a large data set is scored against its capped reference (eval/reference.py), in every space
    train = reference.capped(train.images, train.labels, ev.reference_n, "train")
    holdout = reference.capped(holdout.images, holdout.labels, ev.reference_n, "holdout")
    if ev.uses("classifier"):
        clf = classifier.load(clf_path)
        k = max(ev.pr_k, ev.dc_k)
        sizes.check_scoring(len(images), len(holdout.labels), clf.hparams["feature_dim"], k, what)
        result, nearest = protocol.evaluate(clf, images, holdout.images, train.images, ev, requested,
                                            holdout.labels, train.labels, file_sha256(clf_path))
        result["protocol"] |= reference.protocol(ev.reference_n, train, holdout)
    if ev.uses("inception"):
        result["inception"], nearest, timings["time/inception_images_per_s"] = inception_scores(images, info, cfg,
                                                                                                 what)
        result["inception"]["protocol"] |= reference.protocol(ev.reference_n, train, holdout)
    fake_d, fake_i = nearest
    pairs = copying.closest_pairs(images, train.images, fake_d, fake_i, min(PAIRS, len(images)))
    return result, {"time/evaluate_s": time.perf_counter() - start, **timings}, pairs


def inception_scores(images: torch.Tensor, info: dict, cfg: Config, what: str) -> tuple[dict, tuple, float]:
    """(Inception-space scores of the first evaluate.inception_n images, nearest training image, images/s)."""
    ev: EvaluateConfig = cfg.evaluate
    train_f, hold_f = reference.load(cfg.paths.inception_reference, info["sha256"], ev.reference_n)
    n = min(ev.inception_n, len(images))
    if n <= max(ev.pr_k, ev.dc_k) or n < 2:
        raise ConfigError(f"{what} gives {n} images for Inception space; the k-NN scores need more than "
                                f"{max(ev.pr_k, ev.dc_k)}: score more images (evaluate.inception_n)")
    net = inception.load(inception.device())
    start = time.perf_counter()
    fake_f = inception.features(net, images[:n], ev.inception_batch, "samples")
    seconds = time.perf_counter() - start
    result, fake_d, fake_i = standard.evaluate(fake_f, train_f, hold_f, ev)
    return result, (fake_d, fake_i), n / seconds


def run(cfg: Config) -> dict:
    info, train_split, holdout = read_prepared(cfg.paths.prepared)
    samples = load_samples(cfg.paths.samples)
    clf_path = cfg.paths.classifier
    clf_sha = file_sha256(clf_path)
    trained_with = classifier.load(clf_path).trained_with if cfg.evaluate.uses("classifier") else {}
    prov = identity.Provenance(
        generator_sha256=samples.meta["generator_sha256"], samples_sha256=None, data_sha256=info["sha256"],
        classifier_sha256=clf_sha, params={**samples.meta["params"], **cfg.logged("evaluate"), **trained_with},
        features=cfg.evaluate.features)
    tracking.connect(cfg.tracking)  # a store that is down fails now, not after the scoring
    result, timings, pairs = score(clf_path, samples.images, samples.labels, train_split, holdout, info, cfg,
                                   "sample.n")
    result.setdefault("protocol", {})
    result["protocol"] |= {"generator_sha256": prov.generator_sha256, "provenance": prov.key,
                           "features": cfg.evaluate.features}
    write_json(cfg.paths.eval_metrics, result)
    hists = {side: result[side]["class_hist"] for side in ("fake", "real") if side in result}
    write_text(cfg.paths.eval_hist, class_counts_csv("source", hists))
    save_png(make_grid(pairs, len(pairs) // 2), cfg.paths.copy_grid)
    if cfg.tracking.enabled:
        tags = provenance.stage_tags(cfg)
        rows = int(samples.meta["params"]["sample.grid_rows"])
        with tempfile.TemporaryDirectory() as tmp:
            grid = Path(tmp) / "sample_grid.png"  # the sample stage's grid, drawn again from the samples file
            save_png(make_grid(samples.images[: rows * rows], rows), grid)
            decision = landing.land(cfg.tracking, prov, protocol.flat_scores(result),
                                    timings,
                                    [(cfg.paths.eval_metrics, "eval"), (grid, "eval"),
                                     (cfg.paths.copy_grid, "eval")], tags,
                                    lambda training: provenance.run_name(tags, "eval", training and training.name))
        note(landing.describe(decision))
    return {k: v for k, v in protocol.flat_scores(result).items() if k.startswith("eval/")}
