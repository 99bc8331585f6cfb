"""Stage `train`: the GAN, one MLflow run per training (continued after a resume), a resume checkpoint every
train.checkpoint_every_s seconds (at a tick's end: an epoch, or train.tick_kimg thousand images); writes the
generator, the final losses and the per-tick loss CSV. It says which precision train.precision resolved to on this machine, and tags the run with it.

With train.processes x train.nodes > 1 the stage process launches torchrun's workers (ganpipe.distributed.launch),
each of which runs this same stage; rank 0 alone logs, saves checkpoints and writes the outputs."""
from __future__ import annotations

import csv
import dataclasses
import io
import os
import sys
import time
from pathlib import Path

from ganpipe import gpus
from ganpipe.checkpoint import file_sha256
from ganpipe.console import note
from ganpipe.data.images import make_grid
from ganpipe.data import stream
from ganpipe.data.prepared import BUDGET_ENV, holdout_split, read_info, training_split
from ganpipe.data.stream import Rows
from ganpipe.distributed import launch
from ganpipe.distributed.group import Replicas, joined
from ganpipe.errors import ConfigError, DivergenceError, Pruned, TuneError
from ganpipe.eval import during
from ganpipe.files import remove, source_sha256, write_json, write_text
from ganpipe.gan import devices, resume, sampling
from ganpipe.gan.length import length
from ganpipe.gan.models import build
from ganpipe.gan.scoring import Scores
from ganpipe.gan.train import KIMG, Hooks, Plan, fixed_noise, plan, train
from ganpipe.keys import BEST_GENERATOR_TAG, GENERATOR_TAG, KIND_TAG, PRECISION_TAG
from ganpipe.params import sizes
from ganpipe.params.config import Config
from ganpipe.track import provenance, tracking
from ganpipe.tune.link import STATE_TAG, Link

GRID_SEED = 1234  # fixed noise for the per-tick grids: the same z in every run, so runs compare by eye
TRAINING_CODE = ("gan", "data", "distributed", "params")  # what shapes the trajectory besides params and data
STAGE = Path("stages/train.py")  # what torchrun's workers run
# how and where the processes run: a checkpoint resumes across them (see docs/distributed.md)
PLACEMENT = {"checkpoint_every_s": 0.0, "grid_every_s": 0.0, "processes": 1, "nodes": 1, "rendezvous": None, "backend": "auto",
             "timeout_s": 120}


def _losses_csv(history: list[dict[str, float]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(history[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return buf.getvalue()


def scores_csv(scores: Scores, unit: str, scorer: during.Score | None) -> str:
    """The scores during training by images shown (a DVC plot); only the header without scores."""
    key = scorer.key if scorer is not None else "score"
    rows = [{unit: r["tick"], KIMG: r["progress/kimg"], key: r[key]} for r in scores.rows]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[unit, KIMG, key], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def score_summary(scores: Scores) -> dict[str, float]:
    """train.json's and the run's summary of the scores: the last, the best and where it was (none: {})."""
    if not scores.rows:
        return {}
    key = scores.protocol["score.metric"]
    return {key: scores.rows[-1][key], during.BEST: scores.best["value"], during.BEST_KIMG: scores.best["kimg"]}


def fingerprint(cfg: Config, info: dict, precision: str) -> str:
    """What the training trajectory depends on; a resume checkpoint is reused only when this matches. The code
    is part of it: a checkpoint written before a change to the training code is not resumed after it. So is the
    precision `auto` resolved to: a checkpoint does not resume on a machine that picks the other one."""
    train_cfg = dataclasses.replace(cfg.train, **PLACEMENT, precision=precision)
    return resume.fingerprint(dataclasses.asdict(cfg.model), dataclasses.asdict(train_cfg), info["sha256"],
                              cfg.sample.grid_rows, source_sha256(*TRAINING_CODE))


def run(cfg: Config, node_rank: int = 0) -> dict | None:
    """Train; the summary on rank 0, None on other ranks and in the process that launched them."""
    if launch.needed(cfg.train):
        if node_rank == 0:  # rank 0 logs: a store that is down fails here, before any process starts
            tracking.connect(cfg.tracking)
        started = Path(sys.argv[0])  # the stage file this process runs, wherever it is; else the repository's
        script = started if started.name == STAGE.name and started.is_file() else STAGE
        launch.launch(cfg.train, script, ["--params", cfg.source], node_rank,
                      on_failure=lambda run_id: tracking.mark_failed(cfg.tracking, run_id))
        return None
    with joined(cfg.train) as replicas:
        return _train(cfg, replicas)


def precision_tags(precision: devices.Precision) -> dict[str, str]:
    """What the run trained in and why: `ganpipe reproduce` and `ganpipe compare` show these."""
    return {PRECISION_TAG: precision.used}  # the machine's bf16 fact is env.bf16 (provenance.machine)


def _agree(replicas: Replicas, fp: str) -> None:
    """Every process must train the same thing: params, data and code (several machines: several clones)."""
    prints = replicas.gather(fp)
    if len(set(prints)) > 1:
        odd = [rank for rank, other in enumerate(prints) if other != prints[0]]
        raise ConfigError(f"ranks {odd} have other params, data, training code or precision than rank 0; every "
                          f"machine needs the same commit, params.yaml and prepared data (`dvc pull` or `dvc repro "
                          f"prepare`), and machines that differ in native bf16 need an explicit train.precision")


def _train(cfg: Config, replicas: Replicas) -> dict | None:
    info = read_info(cfg.paths.prepared)
    train_split, on_disk = training_split(cfg.paths.prepared)  # on_disk: memory-mapped, so streamed
    sizes.check_data(cfg, info["n_train"], info["n_holdout"], info["image_shape"][-1])
    num_classes = info["num_classes"]
    # the fit, the device and train.compile checked once, before a run is opened (cuda without a GPU fails here)
    checked = plan(cfg.train, len(train_split.labels), num_classes, cfg.model.conditional, replicas.world)
    device, precision = checked.device, checked.precision
    shape = tuple(info["image_shape"])
    G, D = build(cfg.model, shape, cfg.train.seed, num_classes)  # ConfigError for a shape the arch cannot make
    checkpoint_path, fp = cfg.paths.checkpoint, fingerprint(cfg, info, precision.used)
    _agree(replicas, fp)
    gpu = device.index if device.index is not None else replicas.local_rank  # claimed, or the local rank's
    where = replicas.gather(f"cuda:{gpu}" if device.type == "cuda" else "cpu")
    placement = {"train.world_size": str(replicas.world), "train.backend": replicas.backend or "none",
                 "train.rank_devices": ",".join(where),  # rank r's device is entry r
                 "env.cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", "all"),
                 **({"env.gpu_uuid": gpus.visible_ids()[gpu]} if device.type == "cuda" else {}),
                 **precision_tags(precision)}
    # rank 0's file, sent to all (the other machines have none)
    state = replicas.broadcast(resume.load(checkpoint_path, fp) if replicas.main else None)
    if not replicas.main:
        return _follow(cfg, replicas, G, D, train_split, state, checked, on_disk)
    scorer = during.for_training(cfg, info["sha256"], holdout_split(cfg.paths.prepared), cfg.model.z_dim,
                                 num_classes if cfg.model.conditional else None, device)
    tags = {**provenance.stage_tags(cfg), KIND_TAG: "training", **provenance.data_tags(info), **placement,
            **(scorer.protocol() if scorer is not None else {})}
    run_name = provenance.run_name(tags, "repro")
    trial = Link.from_env(cfg.train.score_every_kimg if scorer is not None else None)  # a `ganpipe tune` trial
    rows = cfg.sample.grid_rows
    note(precision.summary)
    if on_disk is not None and stream.mode() != "off":
        note(f"streaming the training images from {on_disk.path} ({train_split.images.nbytes / 2**30:.2f} GiB, "
             f"memory-mapped: above {BUDGET_ENV} or {stream.STREAM_ENV}=on), the next batches read ahead")
    if precision.warning:
        note(precision.warning)
    with tracking.start_run(cfg.tracking, run_name=run_name, params=cfg.logged(), tags=tags,
                            run_id=state and state.get("run_id")) as run:
        launch.note_run_id(run.run_id)
        if state is not None:
            span = length(cfg.train, len(train_split.labels))
            note(f"resuming from {checkpoint_path} at {span.unit} {state['tick']} of {span.ticks}"
                 f"{resume.placement_note(state.get('world_size', 1), replicas.world)}")
        save_state = lambda s: resume.save(checkpoint_path, {**s, "fingerprint": fp,  # noqa: E731
                                                             "run_id": run.run_id})
        start = time.perf_counter()
        try:
            hooks = Hooks(log=trial.on_tick(run.log_metrics) if trial else run.log_metrics, save_state=save_state,
                          log_images=lambda tick, imgs: run.log_image(tick, "samples", make_grid(imgs, rows)),
                          grid=fixed_noise(rows * rows, cfg.model.z_dim, GRID_SEED, num_classes), score=scorer,
                          on_score=trial.on_score if trial else None, progress=True)
            result = train(G, D, train_split.images, cfg.train, cfg.model.z_dim, labels=train_split.labels,
                           hooks=hooks, resume_from=state, replicas=replicas, checked=checked, rows=on_disk)
        except DivergenceError as exc:
            kept = (f"; the last good state is kept in {checkpoint_path} (it resumes only with unchanged params)"
                    if checkpoint_path.is_file() else "")
            raise DivergenceError(f"{exc}{kept}") from None
        except Pruned:  # the run ends KILLED: a pruned trial is never a result
            run.set_tags({STATE_TAG: "pruned"})
            remove(checkpoint_path)  # the study will not continue it
            raise
        except TuneError:  # its worker is gone: the study retries the trial elsewhere
            run.set_tags({STATE_TAG: "failed"})
            raise
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the run ends KILLED, the checkpoint stays
            if checkpoint_path.is_file():
                note(f"stopped; `dvc repro` with the same params resumes from {checkpoint_path}")
            raise
        train_seconds = time.perf_counter() - start
        span = result.length
        images_trained = (result.steps - result.resumed_steps) * cfg.train.d_steps * cfg.train.batch_size
        ticks = span.ticks - result.resumed_from
        note(f"trained {ticks} {span.unit}{'s' * (ticks != 1)} ({span.kimg(result.steps - result.resumed_steps):g} "
             f"kimg) in {train_seconds:.1f} s ({images_trained / train_seconds:,.0f} images/s); per-{span.unit} work "
             f"(grids, checkpoints, logging): {result.tick_work_s / result.seconds:.1%} of it")
        generator, best = cfg.paths.generator, cfg.paths.generator_best
        sampling.save_generator(result.generator, generator, cfg.model, shape, num_classes)
        # without scores the best known generator is the last one
        sampling.save_generator(result.scores.best_module(result.generator) or result.generator, best, cfg.model,
                                shape, num_classes)
        write_text(cfg.paths.train_losses, _losses_csv(result.history))
        write_text(cfg.paths.train_scores, scores_csv(result.scores, span.unit, scorer))
        final = {k: v for k, v in result.history[-1].items() if k not in (span.unit, KIMG)}
        # passes over the data (a fraction with train.kimg) and thousands of images shown, whichever was set
        passes = round(result.steps / span.per_pass, 4)
        summary = {"steps": result.steps, "images_seen": result.images_seen, "kimg": span.kimg(result.steps),
                   "epochs": int(passes) if passes.is_integer() else passes, **final,
                   **score_summary(result.scores)}
        write_json(cfg.paths.train_metrics, summary)
        gpu = devices.gpu_name(device)
        run.set_tags({GENERATOR_TAG: file_sha256(generator), BEST_GENERATOR_TAG: file_sha256(best),
                      **provenance.machine(device.type, gpu),
                      "train.resumed_from_epoch": str(result.resumed_from), **placement})
        model_uri = run.log_generator(generator, shape)
        if model_uri:
            note(f"generator logged as an MLflow model: mlflow.pyfunc.load_model({model_uri!r})")
        run.log_metrics(span.ticks, {
            "time/train_s": train_seconds,
            "time/images_per_s": images_trained / train_seconds,
            "time/tracking_s": run.seconds,
            "time/tracking_share": run.seconds / train_seconds,
            "time/tick_work_share": result.tick_work_s / result.seconds,  # grids, checkpoints, scores, logging
            "time/score_s": result.score_s,
            "time/score_share": result.score_s / result.seconds,
            **{k: v for k, v in score_summary(result.scores).items() if k.startswith(during.PREFIX)},
        })
        if result.scores.rows:
            note(during.describe(result.scores.rows, result.scores.best, result.score_s / result.seconds))
    remove(checkpoint_path)  # finished: a later run with these params must start from scratch
    return summary


def _follow(cfg: Config, replicas: Replicas, G, D, train_split, state: dict | None, checked: Plan,
            on_disk: Rows | None) -> None:
    """A rank other than 0: the same training steps, nothing logged or written."""
    train(G, D, train_split.images, cfg.train, cfg.model.z_dim, labels=train_split.labels, resume_from=state,
          replicas=replicas, checked=checked, rows=on_disk)
    return None
