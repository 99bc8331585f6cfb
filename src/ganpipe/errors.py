"""The one user-error type. Everything a user can cause (params, files, data, servers, remotes) raises a
subclass of UserError whose message names the problem and the fix; the entry points catch this one type and
print it as one line, never as a traceback. Anything else is a bug and keeps its traceback."""
from __future__ import annotations

from typing import Any, Callable


class UserError(Exception):
    """A mistake the user can fix; str(error) says what is wrong and what to do."""


class ConfigError(UserError, ValueError):
    """A params.yaml (or command-line) mistake; the message names the key and the allowed values."""


class DataError(UserError):
    """Data the user pointed at is missing, unreadable or too small; the message says how to fix it."""


class SamplesError(UserError, ValueError):
    """Samples that cannot be read or scored; the message says what is wrong and what is expected."""


class CheckpointError(UserError):
    """A weights or samples file is missing or corrupt; the message names the stage that re-creates it."""


class DivergenceError(UserError):
    """A training loss became NaN or inf; training cannot continue from this state."""


class TrackingError(UserError):
    """The tracking store cannot be reached or used; the message says how to fix it."""


class ReproduceError(UserError):
    """The target cannot be reproduced as asked; the message says why and what to do."""


class ShareError(UserError):
    """A DVC remote cannot be pushed to or pulled from as asked; the message says why and what to do."""


class TeamError(UserError):
    """The team stack cannot start, stop or be reached; the message says which server and what to do."""


class DistributedError(UserError):
    """A training process failed or could not join; the message names which and what to do."""


class TuneError(UserError):
    """A study cannot start or go on (its search space, storage or trials); the message says what to do."""


class Pruned(KeyboardInterrupt):
    """A `ganpipe tune` trial's training stopped by the study's pruner. A KeyboardInterrupt, so the MLflow run
    ends KILLED (never FINISHED: a pruned trial is no result) and the cleanup runs as on Ctrl-C."""


PRUNED_EXIT = 3  # the stage's exit status when its trial was pruned


class Terminated(KeyboardInterrupt):
    """SIGTERM (plain `kill`, a stopped queue job) raised as an exception, so that cleanup runs as on Ctrl-C:
    the MLflow run is marked KILLED, the resume checkpoint stays, temporary worktrees are removed."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def _out_of_memory(exc: BaseException) -> bool:
    """torch reports a failed allocation as a RuntimeError (OutOfMemoryError on CUDA) that names the bytes."""
    text = str(exc)
    return isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and (
        "can't allocate memory" in text or "out of memory" in text.lower() or "not enough memory" in text))


def run_guarded(call: Callable[[], Any]) -> tuple[int, Any]:
    """(exit code, result) of `call`: user errors and a failed allocation become one line on stderr and exit 1,
    Ctrl-C exits 130 and SIGTERM 143 (after the cleanup their exceptions trigger). Bugs keep their traceback."""
    import signal
    import sys
    import threading

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if main else None
    try:
        return 0, call()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1, None
    except Pruned as exc:
        print(f"pruned: {exc}", file=sys.stderr)
        return PRUNED_EXIT, None
    except Terminated:
        print("terminated (SIGTERM); work finished so far is kept", file=sys.stderr)
        return 143, None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130, None
    except (MemoryError, RuntimeError) as exc:
        if not _out_of_memory(exc):
            raise
        print(f"error: out of memory ({str(exc).splitlines()[0][:200]}). Lower the sizes in params.yaml (model "
              f"widths, batch sizes, sample.n) or free memory", file=sys.stderr)
        return 1, None
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
