"""`ganpipe tune CONFIG --space SPACE.yaml --trials N`: check everything, create (or join) the study, run its
workers.

A study is named (--study, default CONFIG-SPACE) and kept in its storage with what defines it: the config's and
the user's `-S` values, the space file's text, the objectives, the pruner and the git commit. A second call with
the same name, on this machine or in another clone, joins it (more workers, or more trials) only when all of
those match, so the trials of one study are comparable.
"""
from __future__ import annotations

import multiprocessing
import re
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path

from ganpipe.console import note
from ganpipe.errors import ConfigError, TuneError
from ganpipe.params import config
from ganpipe.tune import link, space as spaces, storage
from ganpipe.tune.worker import Job, experiment_refs, work

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,80}$")  # a DVC experiment name's prefix: a git ref part
DEFINES = "ganpipe.defines"  # the study's user attribute holding what defines it
DEFINE_WAIT_S = 60.0  # how long a joiner waits for a study's creator to record its definition


@dataclass(frozen=True)
class Options:
    configs: list[str]
    sets: list[str]
    space: Path
    trials: int
    workers: int = 1
    study: str | None = None
    storage: str | None = None
    prune: str | None = None  # median | halving
    prune_startup: int = 5
    gpus: list[str] | None = None
    heartbeat_s: int = 20


def parse_gpus(text: str | None) -> list[str] | None:
    if text is None:
        return None
    gpus = [g.strip() for g in text.split(",") if g.strip()]
    if not gpus or len(set(gpus)) != len(gpus):
        raise ConfigError(f"--gpus must list each GPU once, e.g. 0,1 (indices or UUIDs), got {text!r}")
    return gpus


def prepare(root: Path, opts: Options) -> Job:
    """Every check before anything starts; the job its workers share."""
    from ganpipe.cli import experiments

    if opts.trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {opts.trials}")
    if opts.workers < 1 or opts.heartbeat_s < 1 or opts.prune_startup < 0:
        raise ConfigError("--workers and --heartbeat must be at least 1, --prune-startup at least 0")
    if opts.gpus is not None and opts.workers > len(opts.gpus):
        raise ConfigError(f"--workers {opts.workers} with --gpus {','.join(opts.gpus)}: each worker is pinned to one "
                          f"GPU, so give at least as many GPUs as workers")
    command = experiments.plan(root, opts.configs, opts.sets, None, [], False, True)[0]
    tree = command.resolved[0]
    sets = tuple(command.args[command.args.index("-S") + 1::2]) if "-S" in command.args else ()
    space = spaces.load(opts.space, tree)
    cfg = config.from_dict(tree)
    if not cfg.tracking.enabled:
        raise ConfigError("ganpipe tune reads each trial's scores from MLflow: set tracking.enabled: true")
    if opts.prune:
        _check_prunable(cfg, space)
    name = opts.study or "-".join([*(Path(c).stem for c in opts.configs), opts.space.stem]) or "study"
    if not NAME.match(name):
        raise ConfigError(f"--study {name!r}: use letters, digits, '.', '_' and '-' (it prefixes the DVC "
                          f"experiments' names)")
    url = opts.storage or storage.default_url(root)
    return Job(root, name, url, opts.trials, sets, space, cfg.tracking, opts.heartbeat_s)


def _check_prunable(cfg: config.Config, space: spaces.Space) -> None:
    if len(space.objectives) > 1:
        raise ConfigError("--prune works with one objective (Optuna cannot prune a multi-objective study): drop "
                          "--prune or keep one objective")
    if cfg.train.score == "none":
        raise ConfigError("--prune stops trials on their scores during training, and train.score is none: set "
                          "train.score: auto (and train.score_every_kimg) in the config")
    if cfg.train.score_every_kimg is None:
        raise ConfigError("--prune compares trials at equal images shown: set train.score_every_kimg instead of "
                          "train.score_every_s")


def defines(job: Job, opts: Options, root: Path) -> dict:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
    return {"sets": list(job.sets), "space": opts.space.read_text(), "commit": commit,
            "objectives": [[o.metric, o.direction] for o in job.space.objectives],
            "pruner": {"kind": opts.prune, "startup": opts.prune_startup} if opts.prune else None}


def open_study(job: Job, opts: Options):
    """Create the study, or join it when it exists with the same definition; TuneError naming what differs."""
    import optuna

    store = storage.open_storage(job.storage_url)
    wanted = defines(job, opts, job.root)
    if job.study not in {s.study_name for s in optuna.get_all_study_summaries(store, include_best_trial=False)}:
        _check_names_free(job)
    try:
        study = optuna.create_study(study_name=job.study, storage=store, directions=job.space.directions)
        # the definition last: a joiner that sees it sees the pruner too
        study.set_user_attr(link.PRUNER_ATTR, wanted["pruner"])
        study.set_user_attr(DEFINES, wanted)
        return study
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=job.study, storage=store)
    have = _definition(study, job)
    for key, what in (("commit", "git commit (check out the same commit in every clone)"),
                      ("sets", "config and -S values"), ("space", f"search space ({opts.space})"),
                      ("objectives", "objectives"), ("pruner", "--prune options")):
        if have.get(key) != wanted[key]:
            raise TuneError(f"study {job.study!r} in {storage.redact(job.storage_url)} was made with another "
                            f"{what}: run the same, or start a new study with --study NEW_NAME")
    return study


def _definition(study, job: Job) -> dict:
    """The study's recorded definition. Optuna creates a study and sets its attributes in separate calls, so a
    worker that starts beside the study's creator (two clones at once) can find it created but not yet defined:
    wait for the creator to record it rather than refuse the study as "another commit"."""
    deadline = time.monotonic() + DEFINE_WAIT_S
    while (defined := study.user_attrs.get(DEFINES)) is None:  # each read is one query to the storage
        if time.monotonic() > deadline:
            raise TuneError(f"study {job.study!r} in {storage.redact(job.storage_url)} exists but its definition "
                            f"was never recorded (the call that created it stopped at once): start a new study "
                            f"with --study NEW_NAME, or delete this one (`optuna delete-study --study-name "
                            f"{job.study} --storage URL`)")
        time.sleep(0.2)
    return defined


def _check_names_free(job: Job) -> None:
    """A new study's trials are named STUDY-t0, -t1, ...: experiments of an earlier study of that name (whose
    database was deleted) would make every trial fail on DVC's name check."""
    taken = sorted(n for n in experiment_refs(job.root) if re.fullmatch(rf"{re.escape(job.study)}-t\d+", n))
    if taken:
        raise TuneError(f"this clone has DVC experiments named like the trials of a new study {job.study!r} "
                        f"({', '.join(taken[:3])}{', ...' if len(taken) > 3 else ''}), from an earlier study of "
                        f"that name: name this one anew (--study NAME), or remove them (`dvc exp remove {taken[0]} "
                        f"...`)")


def run(root: Path, opts: Options) -> str:
    """Run the study's workers until it holds opts.trials finished trials; the summary."""
    job = prepare(root, opts)
    study = open_study(job, opts)
    note(f"study {job.study} in {storage.redact(job.storage_url)}: {opts.trials} finished trials wanted, "
         f"{opts.workers} worker(s) here{'; GPUs ' + ','.join(opts.gpus) if opts.gpus else ''}; logs in "
         f".ganpipe/tune/{job.study}/")
    jobs = [replace(job, worker=i, gpu=opts.gpus[i] if opts.gpus else None) for i in range(opts.workers)]
    if len(jobs) == 1:
        work(jobs[0])
    else:
        _parallel(jobs)
    from ganpipe.tune import show

    return show.summary(study)


def _parallel(jobs: list[Job]) -> None:
    """Each worker in a process of its own (its own heartbeat); any one failing stops the call with its error."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(len(jobs)) as pool:
        try:
            for _ in pool.imap_unordered(work, jobs):
                pass
        except KeyboardInterrupt:
            pool.terminate()
            raise
