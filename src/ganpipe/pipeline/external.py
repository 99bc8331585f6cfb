"""`ganpipe evaluate --samples`: score images made anywhere with this project's protocol, against its prepared
data and trained classifier (`dvc repro train_classifier` makes them), optionally logged as an MLflow run."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from ganpipe.checkpoint import file_sha256
from ganpipe.console import note
from ganpipe.data.imagefiles import read_samples
from ganpipe.data.prepared import read_prepared
from ganpipe.data.split import Split
from ganpipe.errors import DataError, UserError
from ganpipe.eval import classifier, identity, inception, protocol, reference
from ganpipe.files import write_json
from ganpipe.params.config import Config
from ganpipe.pipeline.evaluate import score
from ganpipe.results import landing
from ganpipe.track import tracking

CACHE = Path(".ganpipe")  # Inception references computed for `ganpipe evaluate --samples` (git- and DVC-ignored)


def evaluate_samples(cfg: Config, samples: Path, out: Path | None, log_run: str | None,
                     value_range: str | None = None, features: str | None = None) -> dict:
    """Writes JSON to `out` (default: beside the samples) and, with `log_run`, logs an MLflow run of that name
    (tag ganpipe.source=external); a run holding these very scores already is reused instead of duplicated.
    `features` overrides evaluate.features (classifier | inception | both)."""
    if features is not None:
        cfg = dataclasses.replace(cfg, evaluate=dataclasses.replace(cfg.evaluate, features=features))
    info, train_split, holdout = read_prepared(cfg.paths.prepared)
    c, h, _ = info["image_shape"]
    images, labels = read_samples(samples, c, h, value_range)
    if labels is not None and (labels.min() < 0 or labels.max() >= info["num_classes"]):
        raise DataError(f"{samples}: labels must be class indices in [0, {info['num_classes']}), got "
                        f"[{labels.min()}, {labels.max()}]")
    clf_path = cfg.paths.classifier
    clf_sha = file_sha256(clf_path) if clf_path.is_file() else ""
    trained_with = classifier.load(clf_path).trained_with if cfg.evaluate.uses("classifier") else {}
    if cfg.evaluate.uses("inception"):
        torch.set_num_threads(cfg.evaluate.threads)  # as the reference stage: its features repeat on any machine
        cfg = ensure_reference(cfg, info, train_split, holdout)
    tracking_cfg = dataclasses.replace(cfg.tracking, enabled=True)
    if log_run:
        tracking.connect(tracking_cfg)  # a store that is down fails now, not after the scoring
    result, timings, _ = score(clf_path, images, labels, train_split, holdout, info, cfg, f"--samples {samples}")
    result.setdefault("protocol", {})
    result["protocol"] |= {"samples": str(samples), "features": cfg.evaluate.features}
    out = out or samples.with_name((samples.stem if samples.is_file() else samples.name) + ".eval.json")
    write_json(out, result)
    if log_run:
        samples_sha = file_sha256(samples) if samples.is_file() else folder_sha256(samples)
        prov = identity.Provenance(
            generator_sha256=None, samples_sha256=samples_sha, data_sha256=info["sha256"], classifier_sha256=clf_sha,
            params={**cfg.logged("evaluate"), **trained_with, "samples.value_range": str(value_range)},
            features=cfg.evaluate.features)
        tags = {"ganpipe.source": "external", "samples.path": str(samples.resolve())}
        decision = landing.land(tracking_cfg, prov, protocol.flat_scores(result), timings,
                                [(out, "eval")], tags, lambda _: log_run)
        result["mlflow_run_id"] = decision.run_id
        result["mlflow_note"] = landing.describe(decision)
    result["json"] = str(out)
    return result


def ensure_reference(cfg: Config, info: dict, train: Split, holdout: Split) -> Config:
    """The Inception reference of this data: the `reference` stage's file when it holds it, else computed now
    into that file's place in a cache folder (.ganpipe/) that DVC does not track, and reused next time."""
    path, cap = cfg.paths.inception_reference, cfg.evaluate.reference_n
    try:
        reference.load(path, info["sha256"], cap)
        return cfg
    except UserError:
        pass
    cached = CACHE / f"inception-{info['sha256'][:16]}-{cap or 'all'}.safetensors"
    try:
        reference.load(cached, info["sha256"], cap)
    except UserError:
        parts = (reference.capped(train.images, train.labels, cap, "train"),
                 reference.capped(holdout.images, holdout.labels, cap, "holdout"))
        note(f"computing the Inception features of the real data once ({sum(len(p.labels) for p in parts)} "
             f"images) into {cached}; `dvc repro reference` with evaluate.features: both keeps them in DVC")
        net = inception.load(inception.device())
        reference.save(cached, *reference.compute(net, *parts, cfg.evaluate.inception_batch), info["sha256"],
                       "both", cap)
    return dataclasses.replace(cfg, paths=dataclasses.replace(cfg.paths, inception_reference=cached))


def folder_sha256(folder: Path) -> str:
    """A content hash of a folder of PNGs: the sorted names and bytes of its files."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png"):
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()
