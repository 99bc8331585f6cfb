"""`ganpipe evaluate --samples`: score images made anywhere with this project's protocol, against its prepared
data and trained classifier (`dvc repro train_classifier` makes them), optionally logged as an MLflow run."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from ganpipe.checkpoint import file_sha256
from ganpipe.config import Config
from ganpipe.data.imagefiles import read_samples
from ganpipe.data.prepared import read_prepared
from ganpipe.errors import DataError
from ganpipe.eval import classifier, identity, protocol
from ganpipe.files import write_json
from ganpipe.pipeline.evaluate import score
from ganpipe.track import landing, tracking


def evaluate_samples(cfg: Config, samples: Path, out: Path | None, log_run: str | None,
                     value_range: str | None = None) -> dict:
    """Writes JSON to `out` (default: beside the samples) and, with `log_run`, logs an MLflow run of that name
    (tag ganpipe.source=external); a run holding these very scores already is reused instead of duplicated."""
    info, train_split, holdout = read_prepared(Path(cfg.paths.prepared))
    c, h, _ = info["image_shape"]
    images, labels = read_samples(samples, c, h, value_range)
    if labels is not None and (labels.min() < 0 or labels.max() >= info["num_classes"]):
        raise DataError(f"{samples}: labels must be class indices in [0, {info['num_classes']}), got "
                        f"[{labels.min()}, {labels.max()}]")
    clf_path = Path(cfg.paths.classifier)
    clf, clf_sha = classifier.load(clf_path), file_sha256(clf_path)
    tracking_cfg = dataclasses.replace(cfg.tracking, enabled=True)
    if log_run:
        tracking.connect(tracking_cfg)  # a store that is down fails now, not after the scoring
    result, seconds = score(clf, clf_sha, images, labels, train_split, holdout, cfg.evaluate, f"--samples {samples}")
    result["protocol"]["samples"] = str(samples)
    out = out or samples.with_name((samples.stem if samples.is_file() else samples.name) + ".eval.json")
    write_json(out, result)
    if log_run:
        samples_sha = file_sha256(samples) if samples.is_file() else folder_sha256(samples)
        prov = identity.Provenance(
            generator_sha256=None, samples_sha256=samples_sha, data_sha256=info["sha256"], classifier_sha256=clf_sha,
            params={**cfg.logged("evaluate"), **clf.trained_with, "samples.value_range": str(value_range)})
        tags = {"ganpipe.source": "external", "samples.path": str(samples.resolve())}
        decision = landing.land(tracking_cfg, prov, protocol.flat_scores(result), {"time/evaluate_s": seconds},
                                [(out, "eval")], tags, lambda _: log_run)
        result["mlflow_run_id"] = decision.run_id
        result["mlflow_note"] = landing.describe(decision)
    result["json"] = str(out)
    return result


def folder_sha256(folder: Path) -> str:
    """A content hash of a folder of PNGs: the sorted names and bytes of its files."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png"):
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()
