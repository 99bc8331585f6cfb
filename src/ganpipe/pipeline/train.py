"""Stage `train`: the GAN, one MLflow run per training (continued after a resume), a resume checkpoint every
train.checkpoint_every epochs; writes the generator, the final losses and the per-epoch loss CSV."""
from __future__ import annotations

import csv
import dataclasses
import io
import time
from pathlib import Path

from ganpipe import sizes
from ganpipe.checkpoint import file_sha256
from ganpipe.config import Config
from ganpipe.data.images import make_grid
from ganpipe.data.prepared import read_prepared
from ganpipe.errors import DivergenceError
from ganpipe.files import remove, source_sha256, write_json, write_text
from ganpipe.gan import devices, resume, sampling
from ganpipe.gan.models import build
from ganpipe.gan.train import check_fits, fixed_noise, train
from ganpipe.keys import GENERATOR_TAG, KIND_TAG
from ganpipe.track import provenance, tracking

GRID_SEED = 1234  # fixed noise for the per-epoch grids: the same z in every run, so runs compare by eye
TRAINING_CODE = ("gan", "data", "config.py")  # what shapes the trajectory besides params and data


def _losses_csv(history: list[dict[str, float]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(history[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return buf.getvalue()


def fingerprint(cfg: Config, info: dict) -> str:
    """What the training trajectory depends on; a resume checkpoint is reused only when this matches. The code
    is part of it: a checkpoint written before a change to the training code is not resumed after it."""
    train_cfg = dataclasses.replace(cfg.train, checkpoint_every=1)  # how often it saves does not change results
    return resume.fingerprint(dataclasses.asdict(cfg.model), dataclasses.asdict(train_cfg), info["sha256"],
                              cfg.sample.grid_rows, source_sha256(*TRAINING_CODE))


def run(cfg: Config) -> dict:
    info, train_split, _ = read_prepared(Path(cfg.paths.prepared))
    sizes.check_data(cfg, info["n_train"], info["n_holdout"], info["image_shape"][-1])
    num_classes = info["num_classes"]
    check_fits(cfg.train, len(train_split.labels), num_classes, cfg.model.conditional)
    device = devices.resolve(cfg.train.device)  # cuda without a GPU fails here, before a run is opened
    shape = tuple(info["image_shape"])
    G, D = build(cfg.model, shape, cfg.train.seed, num_classes)  # ConfigError for a shape the arch cannot make
    checkpoint_path, fp = Path(cfg.paths.checkpoint), fingerprint(cfg, info)
    state = resume.load(checkpoint_path, fp)
    root = tracking.project_root()
    tags = {**provenance.git_tags(Path.cwd(), list(dataclasses.asdict(cfg.paths).values())),
            **provenance.dvc_tags(cfg, root), KIND_TAG: "training", **provenance.data_tags(info)}
    run_name = tags["dvc.exp_name"] if tags["dvc.exp_name"] != "workspace" else f"repro-{tags['git.commit'][:7]}"
    rows = cfg.sample.grid_rows
    with tracking.start_run(cfg.tracking, run_name=run_name, params=cfg.logged(), tags=tags,
                            run_id=state and state.get("run_id")) as run:
        if state is not None:
            print(f"resuming from {checkpoint_path} at epoch {state['epoch']} of {cfg.train.epochs}")
        save_state = lambda s: resume.save(checkpoint_path, {**s, "fingerprint": fp,  # noqa: E731
                                                             "run_id": run.run_id})
        start = time.perf_counter()
        try:
            result = train(
                G, D, train_split.images, cfg.train, cfg.model.z_dim, labels=train_split.labels, log=run.log_metrics,
                log_images=lambda epoch, imgs: run.log_image(epoch, "samples", make_grid(imgs, rows)),
                grid=fixed_noise(rows * rows, cfg.model.z_dim, GRID_SEED, num_classes),
                save_state=save_state, resume_from=state,
            )
        except DivergenceError as exc:
            kept = (f"; the last good state is kept in {checkpoint_path} (it resumes only with unchanged params)"
                    if checkpoint_path.is_file() else "")
            raise DivergenceError(f"{exc}{kept}") from None
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the run ends KILLED, the checkpoint stays
            if checkpoint_path.is_file():
                print(f"stopped; `dvc repro` with the same params resumes from {checkpoint_path}")
            raise
        train_seconds = time.perf_counter() - start
        generator = Path(cfg.paths.generator)
        sampling.save_generator(result.generator, generator, cfg.model, shape, num_classes)
        write_text(Path(cfg.paths.train_losses), _losses_csv(result.history))
        final = {k: v for k, v in result.history[-1].items() if k != "epoch"}
        summary = {"steps": result.steps, "images_seen": result.images_seen, "epochs": cfg.train.epochs, **final}
        write_json(Path(cfg.paths.train_metrics), summary)
        gpu = devices.gpu_name(device)
        run.set_tags({GENERATOR_TAG: file_sha256(generator), **provenance.machine(device.type, gpu),
                      "train.resumed_from_epoch": str(result.resumed_from)})
        run.log_generator(generator, shape)
        images_trained = result.images_seen * (cfg.train.epochs - result.resumed_from) / cfg.train.epochs
        run.log_metrics(cfg.train.epochs, {
            "time/train_s": train_seconds,
            "time/images_per_s": images_trained / train_seconds,
            "time/tracking_s": run.seconds,
            "time/tracking_share": run.seconds / train_seconds,
        })
    remove(checkpoint_path)  # finished: a later run with these params must start from scratch
    return summary
