"""One function per DVC stage: read inputs, call the library, write outputs, mirror them to MLflow.

Everything a user can get wrong (params, data, weights, tracking store) is checked before the expensive
work starts, and each output is written atomically at the end, so a failed stage leaves nothing half-written.
Only deterministic numbers go to the DVC metrics files; timings go to MLflow only.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import time
from pathlib import Path

from ganpipe import classifier, data, evaluation, sampling, tracking
from ganpipe.checkpoint import file_sha256
from ganpipe.config import Config
from ganpipe.files import class_counts_csv, write_json, write_text
from ganpipe.images import make_grid, save_png
from ganpipe.models import build
from ganpipe.train import check_fits, fixed_noise, train

GRID_SEED = 1234  # fixed noise for the per-epoch grids: the same z in every run, so runs compare by eye


def prepare(cfg: Config) -> dict:
    return data.prepare(cfg.data, Path(cfg.paths.prepared))


def _splits(cfg: Config) -> tuple[dict, data.Split, data.Split]:
    folder = Path(cfg.paths.prepared)
    info = data.read_info(folder)
    return info, data.load_split(folder / data.TRAIN_FILE), data.load_split(folder / data.HOLDOUT_FILE)


def train_classifier(cfg: Config) -> dict:
    info, train_split, holdout = _splits(cfg)
    model = classifier.train_classifier(train_split, cfg.classifier, info["num_classes"])
    scores = {"holdout_accuracy": classifier.accuracy(model, holdout),
              "train_accuracy": classifier.accuracy(model, train_split)}
    classifier.save(model, Path(cfg.paths.classifier))
    write_json(Path(cfg.paths.classifier_metrics), scores)
    return scores


def _losses_csv(history: list[dict[str, float]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(history[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return buf.getvalue()


def train_gan(cfg: Config) -> dict:
    info, train_split, _ = _splits(cfg)
    check_fits(cfg.train, len(train_split.labels))
    shape = tuple(info["image_shape"])
    G, D = build(cfg.model, shape, cfg.train.seed)  # raises ConfigError for a shape the arch cannot make
    root = tracking.project_root()
    tags = {**tracking.git_tags(root, list(dataclasses.asdict(cfg.paths).values())), **tracking.dvc_tags(),
            "data.name": info["dataset"], "data.sha256": info["sha256"]}
    run_name = tags["dvc.exp_name"] if tags["dvc.exp_name"] != "workspace" else f"repro-{tags['git.commit'][:7]}"
    rows = cfg.sample.grid_rows
    with tracking.start_run(cfg.tracking, run_name=run_name, params=cfg.flat(), tags=tags) as run:
        start = time.perf_counter()
        result = train(
            G, D, train_split.images, cfg.train, cfg.model.z_dim,
            log=run.log_metrics,
            log_images=lambda epoch, imgs: run.log_image(epoch, "samples", make_grid(imgs, rows)),
            grid_noise=fixed_noise(rows * rows, cfg.model.z_dim, GRID_SEED),
        )
        train_seconds = time.perf_counter() - start
        generator = Path(cfg.paths.generator)
        sampling.save_generator(result.generator, generator, cfg.model, shape)
        write_text(Path(cfg.paths.train_losses), _losses_csv(result.history))
        final = {k: v for k, v in result.history[-1].items() if k != "epoch"}
        summary = {"steps": result.steps, "images_seen": result.images_seen, "epochs": cfg.train.epochs, **final}
        write_json(Path(cfg.paths.train_metrics), summary)
        run.set_tags({tracking.GENERATOR_TAG: file_sha256(generator)})
        run.log_generator(result.generator)
        run.log_metrics(cfg.train.epochs, {
            "time/train_s": train_seconds,
            "time/images_per_s": result.images_seen / train_seconds,
            "time/tracking_s": run.seconds,
            "time/tracking_share": run.seconds / train_seconds,
        })
    return summary


def sample(cfg: Config) -> int:
    G, model_cfg = sampling.load_generator(Path(cfg.paths.generator))
    images = sampling.generate(G, cfg.sample.n, model_cfg.z_dim, cfg.sample.seed, cfg.sample.batch_size)
    sampling.save_samples(images, Path(cfg.paths.samples))
    save_png(make_grid(images[: cfg.sample.grid_rows**2], cfg.sample.grid_rows), Path(cfg.paths.sample_grid))
    return len(images)


def evaluate(cfg: Config) -> dict:
    _, train_split, holdout = _splits(cfg)
    clf = classifier.load(Path(cfg.paths.classifier))
    fake = sampling.load_samples(Path(cfg.paths.samples))
    generator_sha = file_sha256(Path(cfg.paths.generator))
    run_id = tracking.find_generator_run(cfg.tracking, generator_sha)  # connects first: fails fast if down
    start = time.perf_counter()
    result = evaluation.evaluate(clf, fake, holdout.images, train_split.images, cfg.evaluate)
    seconds = time.perf_counter() - start
    write_json(Path(cfg.paths.eval_metrics), result)
    hists = {side: result[side]["class_hist"] for side in ("fake", "real")}
    write_text(Path(cfg.paths.eval_hist), class_counts_csv("source", hists))
    if cfg.tracking.enabled:
        # re-open the run that trained this generator (found by its file hash), or a new one if it is gone
        with tracking.start_run(cfg.tracking, run_id=run_id, run_name="evaluate-only",
                                tags=None if run_id else {tracking.GENERATOR_TAG: generator_sha}) as run:
            numbers = {f"eval/{k}": v for k, v in result["fake"].items() if k != "class_hist"}
            numbers |= {f"eval_real/{k}": v for k, v in result["real"].items() if k != "class_hist"}
            run.log_metrics(0, numbers | {"time/evaluate_s": seconds})
            run.set_tags({"eval.classifier_sha256": file_sha256(Path(cfg.paths.classifier))})
            run.log_artifact(Path(cfg.paths.eval_metrics), "eval")
            run.log_artifact(Path(cfg.paths.sample_grid), "eval")
    return result
