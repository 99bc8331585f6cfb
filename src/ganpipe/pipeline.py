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

from ganpipe import classifier, data, devices, evaluation, resume, sampling, tracking
from ganpipe.checkpoint import file_sha256
from ganpipe.config import Config
from ganpipe.files import class_counts_csv, remove, write_json, write_text
from ganpipe.images import make_grid, save_png
from ganpipe.models import build
from ganpipe.train import DivergenceError, check_fits, fixed_noise, train

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


def _fingerprint(cfg: Config, info: dict) -> str:
    """What the training trajectory depends on; a resume checkpoint is reused only when this matches."""
    train_cfg = dataclasses.replace(cfg.train, checkpoint_every=1)  # how often it saves does not change results
    return resume.fingerprint(dataclasses.asdict(cfg.model), dataclasses.asdict(train_cfg), info["sha256"],
                              cfg.sample.grid_rows)


def train_gan(cfg: Config) -> dict:
    info, train_split, _ = _splits(cfg)
    num_classes = info["num_classes"]
    check_fits(cfg.train, len(train_split.labels), num_classes, cfg.model.conditional)
    device = devices.resolve(cfg.train.device)  # cuda without a GPU fails here, before a run is opened
    shape = tuple(info["image_shape"])
    G, D = build(cfg.model, shape, cfg.train.seed, num_classes)  # ConfigError for a shape the arch cannot make
    checkpoint_path, fingerprint = Path(cfg.paths.checkpoint), _fingerprint(cfg, info)
    state = resume.load(checkpoint_path, fingerprint)
    root = tracking.project_root()
    tags = {**tracking.git_tags(Path.cwd(), list(dataclasses.asdict(cfg.paths).values())),
            **tracking.dvc_tags(cfg, root),
            "data.name": info["dataset"], "data.sha256": info["sha256"]}
    run_name = tags["dvc.exp_name"] if tags["dvc.exp_name"] != "workspace" else f"repro-{tags['git.commit'][:7]}"
    rows = cfg.sample.grid_rows
    with tracking.start_run(cfg.tracking, run_name=run_name, params=cfg.flat(), tags=tags,
                            run_id=state and state.get("run_id")) as run:
        if state is not None:
            print(f"resuming from {checkpoint_path} at epoch {state['epoch']} of {cfg.train.epochs}")
        save_state = lambda s: resume.save(checkpoint_path, {**s, "fingerprint": fingerprint,  # noqa: E731
                                                             "run_id": run.run_id})
        start = time.perf_counter()
        try:
            result = train(
                G, D, train_split.images, cfg.train, cfg.model.z_dim, labels=train_split.labels,
                num_classes=num_classes, log=run.log_metrics,
                log_images=lambda epoch, imgs: run.log_image(epoch, "samples", make_grid(imgs, rows)),
                grid=fixed_noise(rows * rows, cfg.model.z_dim, GRID_SEED, num_classes),
                save_state=save_state, resume_from=state,
            )
        except DivergenceError as exc:
            kept = (f"; the last good state is kept in {checkpoint_path} (it resumes only with unchanged params)"
                    if checkpoint_path.is_file() else "")
            raise DivergenceError(f"{exc}{kept}") from None
        except KeyboardInterrupt:
            if checkpoint_path.is_file():
                print(f"interrupted; `dvc repro` with the same params resumes from {checkpoint_path}")
            raise
        train_seconds = time.perf_counter() - start
        generator = Path(cfg.paths.generator)
        sampling.save_generator(result.generator, generator, cfg.model, shape, num_classes)
        write_text(Path(cfg.paths.train_losses), _losses_csv(result.history))
        final = {k: v for k, v in result.history[-1].items() if k != "epoch"}
        summary = {"steps": result.steps, "images_seen": result.images_seen, "epochs": cfg.train.epochs, **final}
        write_json(Path(cfg.paths.train_metrics), summary)
        generator_sha = file_sha256(generator)
        if run.run_id:
            tracking.copy_scores_from_twin(cfg.tracking, run.run_id, generator_sha)
        run.set_tags({tracking.GENERATOR_TAG: generator_sha, **devices.machine(device),
                      "train.device": device.type,
                      "train.resumed_from_epoch": str(result.resumed_from)})
        run.log_generator(result.generator)
        images_trained = result.images_seen * (cfg.train.epochs - result.resumed_from) / cfg.train.epochs
        run.log_metrics(cfg.train.epochs, {
            "time/train_s": train_seconds,
            "time/images_per_s": images_trained / train_seconds,
            "time/tracking_s": run.seconds,
            "time/tracking_share": run.seconds / train_seconds,
        })
    remove(checkpoint_path)  # finished: a later run with these params must start from scratch
    return summary


def sample(cfg: Config) -> int:
    gen = sampling.load_generator(Path(cfg.paths.generator))
    labels = sampling.requested_labels(cfg.sample.n, cfg.sample.classes, gen)
    images = sampling.generate(gen.net, cfg.sample.n, gen.model.z_dim, cfg.sample.seed, cfg.sample.batch_size,
                               labels)
    sampling.save_samples(images, Path(cfg.paths.samples), labels)
    save_png(make_grid(images[: cfg.sample.grid_rows**2], cfg.sample.grid_rows), Path(cfg.paths.sample_grid))
    return len(images)


def _score(cfg: Config, images, requested, train_split: data.Split, holdout: data.Split) -> tuple[dict, str, float]:
    """Every score of `images` with the project's classifier: (result, classifier sha256, seconds)."""
    clf = classifier.load(Path(cfg.paths.classifier))
    classifier_sha = file_sha256(Path(cfg.paths.classifier))
    start = time.perf_counter()
    result = evaluation.evaluate(clf, images, holdout.images, train_split.images, cfg.evaluate, requested,
                                 holdout.labels, train_split.labels, classifier_sha)
    return result, classifier_sha, time.perf_counter() - start


def evaluate(cfg: Config) -> dict:
    _, train_split, holdout = _splits(cfg)
    fake, requested = sampling.load_samples(Path(cfg.paths.samples))
    generator_sha = file_sha256(Path(cfg.paths.generator))
    run_id = tracking.find_generator_run(cfg.tracking, generator_sha)  # connects first: fails fast if down
    result, classifier_sha, seconds = _score(cfg, fake, requested, train_split, holdout)
    write_json(Path(cfg.paths.eval_metrics), result)
    hists = {side: result[side]["class_hist"] for side in ("fake", "real")}
    write_text(Path(cfg.paths.eval_hist), class_counts_csv("source", hists))
    if cfg.tracking.enabled:
        # re-open the run that trained this generator (found by its file hash), or a new one if it is gone
        with tracking.start_run(cfg.tracking, run_id=run_id, run_name="evaluate-only",
                                tags=None if run_id else {tracking.GENERATOR_TAG: generator_sha}) as run:
            run.log_metrics(0, evaluation.flat_scores(result) | {"time/evaluate_s": seconds})
            run.set_tags({"eval.classifier_sha256": classifier_sha})
            run.log_artifact(Path(cfg.paths.eval_metrics), "eval")
            run.log_artifact(Path(cfg.paths.sample_grid), "eval")
    return result


def evaluate_samples(cfg: Config, samples: Path, out: Path | None, log_run: str | None) -> dict:
    """Score images made anywhere with the pipeline's protocol (`ganpipe evaluate --samples`).

    Uses the prepared data and the trained classifier of this project (`dvc repro train_classifier` makes
    them). Writes JSON to `out` (default: beside the samples) and, with `log_run`, logs an MLflow run of that
    name tagged ganpipe.source=external.
    """
    from ganpipe.imagefiles import read_samples

    info, train_split, holdout = _splits(cfg)
    c, h, _ = info["image_shape"]
    images, labels = read_samples(samples, c, h)
    if labels is not None and (labels.min() < 0 or labels.max() >= info["num_classes"]):
        raise data.DataError(f"{samples}: labels must be class indices in [0, {info['num_classes']}), got "
                             f"[{labels.min()}, {labels.max()}]")
    result, classifier_sha, seconds = _score(cfg, images, labels, train_split, holdout)
    result["protocol"]["samples"] = str(samples)
    out = out or samples.with_name((samples.stem if samples.is_file() else samples.name) + ".eval.json")
    write_json(out, result)
    if log_run:
        tags = {"ganpipe.source": "external", "samples.path": str(Path(samples).resolve()),
                "eval.classifier_sha256": classifier_sha, "data.sha256": info["sha256"]}
        if Path(samples).is_file():
            tags["samples.sha256"] = file_sha256(Path(samples))
        with tracking.start_run(dataclasses.replace(cfg.tracking, enabled=True), run_name=log_run,
                                tags=tags) as run:
            run.log_metrics(0, evaluation.flat_scores(result) | {"time/evaluate_s": seconds})
            run.log_artifact(out, "eval")
        result["mlflow_run_id"] = run.run_id
    result["json"] = str(out)
    return result
