"""Where a study lives, and the Optuna objects every process of it builds alike: the storage (with the
workers' heartbeat) and the pruner.

SQLite in the project (.ganpipe/tune.db) by default: workers on this machine share it. Workers on several
machines share a server database: the team stack's PostgreSQL (`ganpipe team up` prints its URL as
GANPIPE_TUNE_STORAGE), or any database SQLAlchemy reaches.

A worker's heartbeat: every `heartbeat_s` it stamps its running trial. A trial whose stamp is older than
3 x heartbeat_s (its worker was killed, or its machine went down) is marked FAIL by the next worker that starts
a trial, and re-queued with the same params (RetryHeartbeatStaleTrialCallback, at most MAX_RETRY times per trial).
"""
from __future__ import annotations

import re
import time
import warnings
from pathlib import Path

from ganpipe.errors import TuneError

DEFAULT = ".ganpipe/tune.db"
MAX_RETRY = 2
PRUNERS = ("median", "halving")
PRUNER_ATTR = "ganpipe.pruner"  # the study's pruner, so that every stage of every worker prunes alike


def default_url(root: Path) -> str:
    return f"sqlite:///{(root / DEFAULT).resolve()}"


def redact(url: str) -> str:
    """The URL as printed: without its password."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def open_storage(url: str, heartbeat_s: int | None = None):
    """Optuna's RDB storage at `url` (tables created on first use); with heartbeat_s, the worker's heartbeat
    and the retry of a stale trial. TuneError naming the URL when it cannot be reached or used."""
    import optuna
    import sqlalchemy.exc
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the workers print a line per trial themselves
    # the heartbeat, its retry and TPE's constant liar are marked experimental since Optuna 2.8-3.x: not news
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    retry = RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)
    beat = ({"heartbeat_interval": heartbeat_s, "grace_period": 3 * heartbeat_s,
             "heartbeat_stale_trial_callback": retry} if heartbeat_s else {})
    for attempt in range(3):
        try:
            # pool_pre_ping: a server connection that dropped while a long trial ran is replaced, not failed on
            return RDBStorage(url, engine_kwargs={} if url.startswith("sqlite") else {"pool_pre_ping": True}, **beat)
        except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as exc:
            if isinstance(exc, sqlalchemy.exc.IntegrityError) and attempt < 2:  # two workers creating the tables
                time.sleep(1.0 + attempt)  # of a new database at once: the other one's are there in a moment
                continue
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise TuneError(f"cannot open the study storage {redact(url)}: {first}. Check the URL (--storage or "
                            f"GANPIPE_TUNE_STORAGE; the team stack's is printed by `ganpipe team up`) and that its "
                            f"server is up") from None
    raise AssertionError("unreachable")


def make_pruner(spec: dict | None):
    """The pruner of a study's spec {"kind": median|halving, "startup": trials before any pruning}; a no-op
    without one."""
    import optuna

    if not spec:
        return optuna.pruners.NopPruner()
    if spec["kind"] == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=spec["startup"], n_warmup_steps=0)
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)


def pruner(store, study_name: str):
    """The pruner the study was created with (its user attribute), built the same way in every process."""
    study_id = store.get_study_id_from_name(study_name)
    return make_pruner(store.get_study_user_attrs(study_id).get(PRUNER_ATTR))
