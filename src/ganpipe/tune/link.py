"""The train stage's link to its `ganpipe tune` trial: its scores reported, a prune, and a stop when orphaned.

The worker (tune/worker.py) runs each trial as `dvc exp run` with these variables set; DVC passes them to the
stages. Outside `ganpipe tune` none is set and nothing here does anything. Every stage's run is tagged with the
study and trial (track/provenance.py: tune.study, tune.trial), and the train stage:
- reports each score during training to the study as the trial's intermediate value, and stops when the
  study's pruner says so (errors.Pruned: the run ends KILLED and tagged tune.state=pruned);
- stops by itself when its worker is gone (killed with the machine's `kill -9`, or crashed): the worker's
  heartbeat stops with it, another worker marks the trial failed and retries it, and this training would
  only compete with the retry. It checks the worker's pid every tick and the trial's state at every score.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from ganpipe.errors import Pruned, TuneError
from ganpipe.keys import TUNE_STATE_TAG, TUNE_STUDY_ENV, TUNE_TRIAL_ENV
from ganpipe.tune.storage import PRUNER_ATTR

STORAGE_ENV = "GANPIPE_TUNE_STORAGE"  # the study's storage URL (also the default of `ganpipe tune --storage`)
STUDY_ENV, TRIAL_ENV = TUNE_STUDY_ENV, TUNE_TRIAL_ENV  # the study's name, the trial's number in it
TRIAL_ID_ENV = "GANPIPE_TUNE_TRIAL_ID"  # the trial's id in the storage
WORKER_ENV = "GANPIPE_TUNE_WORKER_PID"
PRUNED_ATTR = "ganpipe.pruned_at_kimg"  # set on the trial by the stage that pruned it; the worker reads it
STATE_TAG = TUNE_STATE_TAG  # complete | pruned | failed


def step(kimg: float, every_kimg: float) -> int:
    """A score's position as the pruner compares it: kimg shown in units of train.score_every_kimg, rounded.
    Trials that differ in batch size or tick length score a few images apart; rounded, they meet."""
    return round(kimg / every_kimg)


def _alive(pid: int) -> bool:
    """Whether process `pid` runs: exists and is not a zombie (killed, not yet reaped by its parent)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: it exists
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:  # no /proc (macOS): kill's answer stands
        return True


@dataclass
class Link:
    """The train stage's link to its trial (from_env); None outside `ganpipe tune`."""
    storage_url: str
    study_name: str
    trial_id: int
    number: int
    worker_pid: int
    every_kimg: float | None  # the score cadence (None: scores on a clock, which is never pruned on)
    _trial: object = None
    _last_step: int | None = None

    @classmethod
    def from_env(cls, every_kimg: float | None) -> "Link | None":
        env = os.environ
        if TRIAL_ID_ENV not in env:
            return None
        try:
            return cls(env[STORAGE_ENV], env[STUDY_ENV], int(env[TRIAL_ID_ENV]), int(env[TRIAL_ENV]),
                       int(env[WORKER_ENV]), every_kimg)
        except (KeyError, ValueError):
            raise TuneError(f"{TRIAL_ID_ENV} is set but {STORAGE_ENV}, {STUDY_ENV}, {TRIAL_ENV} and {WORKER_ENV} "
                            f"are not all set: these are set by `ganpipe tune` for its trials; unset "
                            f"{TRIAL_ID_ENV} to run the pipeline by hand") from None

    def check_worker(self) -> None:
        """TuneError when the worker that started this trial is gone (this machine's process)."""
        if not _alive(self.worker_pid):
            raise TuneError(f"the `ganpipe tune` worker (pid {self.worker_pid}) that started trial {self.number} "
                            f"of study {self.study_name} is gone; stopping its training (the study marks the "
                            f"trial failed and another worker retries it)")

    def on_tick(self, log):
        """`log` (the per-tick metrics hook), checking first that the worker still runs."""
        def checked(tick: int, row: dict[str, float]) -> None:
            self.check_worker()
            log(tick, row)
        return checked

    def on_score(self, kimg: float, value: float) -> None:
        """Report the score as the trial's intermediate value; errors.Pruned when the pruner stops it."""
        from optuna.trial import TrialState

        trial = self._open()
        state = trial.storage.get_trial(self.trial_id).state
        if state != TrialState.RUNNING:
            raise TuneError(f"trial {self.number} of study {self.study_name} is {state.name.lower()} in the "
                            f"study (its worker stopped answering, so another worker retries it); stopping")
        if self.every_kimg is None:  # clock scores fall at no fixed position: not comparable across trials
            return
        at = step(kimg, self.every_kimg)
        if at == self._last_step:  # the last tick's score can round onto the one before: the first is kept
            return
        self._last_step = at
        trial.report(value, at)  # the trial's curve in the study (--show), pruned on or not
        if trial.should_prune():  # never, without --prune (Optuna's NopPruner)
            trial.storage.set_trial_system_attr(self.trial_id, PRUNED_ATTR, kimg)
            raise Pruned(f"trial {self.number} of study {self.study_name} at {kimg:g} kimg: its score {value:.4g} "
                         f"is worse than the study's {trial.study.user_attrs[PRUNER_ATTR]['kind']} pruner allows "
                         f"at this point")

    def _open(self):
        if self._trial is None:
            import optuna

            from ganpipe.tune import storage

            store = storage.open_storage(self.storage_url)
            study = optuna.load_study(study_name=self.study_name, storage=store,
                                      pruner=storage.pruner(store, self.study_name))
            self._trial = optuna.trial.Trial(study, self.trial_id)
        return self._trial
