"""Stage `evaluate`: the samples scored against the real held-out split (and the held-out split against the
training split: the ceiling), written to paths.eval_metrics and logged to MLflow on the run its provenance
names (track/landing.py): the training run when it logged exactly these inputs, else a linked evaluation run.

It reads only what dvc.yaml declares: the samples file (which records its generator and sample params), the
classifier file (which records its params) and the prepared folder (which records the data hash)."""
from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

import torch

from ganpipe import sizes
from ganpipe.checkpoint import file_sha256
from ganpipe.config import Config, EvaluateConfig
from ganpipe.data.images import make_grid, save_png
from ganpipe.data.prepared import read_prepared
from ganpipe.data.samples import load_samples
from ganpipe.data.split import Split
from ganpipe.eval import classifier, identity, protocol
from ganpipe.files import class_counts_csv, write_json, write_text
from ganpipe.track import landing, provenance, tracking


def score(clf: classifier.Classifier, clf_sha: str, images: torch.Tensor, requested: torch.Tensor | None,
          train: Split, holdout: Split, cfg: EvaluateConfig, what: str) -> tuple[dict, float]:
    """(every score of `images` with the protocol, seconds). `what` names the images in a refusal."""
    k = max(cfg.pr_k, cfg.dc_k)
    sizes.check_scoring(len(images), len(holdout.labels), clf.hparams["feature_dim"], k, what)
    start = time.perf_counter()
    result = protocol.evaluate(clf, images, holdout.images, train.images, cfg, requested, holdout.labels,
                               train.labels, clf_sha)
    return result, time.perf_counter() - start


def run_name(tags: dict[str, str], training: tracking.RunRecord | None) -> str:
    if tags.get("dvc.exp_name", "workspace") != "workspace":
        return tags["dvc.exp_name"]
    return f"eval-{training.name}" if training is not None else f"eval-{tags.get('git.commit', 'unknown')[:7]}"


def run(cfg: Config) -> dict:
    info, train_split, holdout = read_prepared(Path(cfg.paths.prepared))
    samples = load_samples(Path(cfg.paths.samples))
    clf_path = Path(cfg.paths.classifier)
    clf, clf_sha = classifier.load(clf_path), file_sha256(clf_path)
    prov = identity.Provenance(
        generator_sha256=samples.meta["generator_sha256"], samples_sha256=None, data_sha256=info["sha256"],
        classifier_sha256=clf_sha, params={**samples.meta["params"], **cfg.logged("evaluate"), **clf.trained_with})
    tracking.connect(cfg.tracking)  # a store that is down fails now, not after the scoring
    result, seconds = score(clf, clf_sha, samples.images, samples.labels, train_split, holdout, cfg.evaluate,
                            "sample.n")
    result["protocol"] |= {"generator_sha256": prov.generator_sha256, "provenance": prov.key}
    write_json(Path(cfg.paths.eval_metrics), result)
    hists = {side: result[side]["class_hist"] for side in ("fake", "real")}
    write_text(Path(cfg.paths.eval_hist), class_counts_csv("source", hists))
    if cfg.tracking.enabled:
        root = tracking.project_root()
        tags = {**provenance.git_tags(Path.cwd(), list(dataclasses.asdict(cfg.paths).values())),
                **provenance.dvc_tags(cfg, root)}
        rows = int(samples.meta["params"]["sample.grid_rows"])
        with tempfile.TemporaryDirectory() as tmp:
            grid = Path(tmp) / "sample_grid.png"  # the sample stage's grid, drawn again from the samples file
            save_png(make_grid(samples.images[: rows * rows], rows), grid)
            decision = landing.land(cfg.tracking, prov, protocol.flat_scores(result),
                                              {"time/evaluate_s": seconds},
                                              [(Path(cfg.paths.eval_metrics), "eval"), (grid, "eval")], tags,
                                              lambda training: run_name(tags, training))
        print(landing.describe(decision))
    return {k: v for k, v in result["fake"].items() if isinstance(v, (int, float))}
