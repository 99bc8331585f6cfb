"""What goes wrong between a stage and its MLflow store, as one line each, and how long a logging call waits
for a store that went away in the middle of a run.

Decision (team mode): a run that is logging rides out a short outage (the server restarted, its database
restarted under it, its artifact store down) by retrying each call with backoff for up to
$GANPIPE_TRACKING_RETRY_S seconds (default 300) from the first failure. Past that it fails with one line; the
training's checkpoint stays, and `dvc repro` resumes into the same run (run.py then skips every epoch it
already has). Opening a run does not wait: a store that is down or refusing at the start fails in seconds.
"""
from __future__ import annotations

import math
import os
import time
from typing import Callable, TypeVar

from ganpipe.console import note
from ganpipe.errors import ConfigError, TrackingError
from ganpipe.track.store import tracking_uri

RETRY_ENV = "GANPIPE_TRACKING_RETRY_S"
DEFAULT_RETRY_S = 300.0
MAX_DELAY_S = 30.0
T = TypeVar("T")


def retry_budget() -> float:
    """Seconds a logging call keeps retrying a store that failed under it."""
    text = os.environ.get(RETRY_ENV, "").strip()
    if not text:
        return DEFAULT_RETRY_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (0 <= value and math.isfinite(value)):
        raise ConfigError(f"{RETRY_ENV}={text!r} is not a number of seconds >= 0 (how long a logging call waits "
                          f"for an MLflow store that went away); unset it for the default {DEFAULT_RETRY_S:g}")
    return value


def _status(exc: BaseException) -> int | None:
    """The HTTP status of the server's answer behind an error, where there was one."""
    from mlflow.exceptions import RestException

    response = getattr(exc, "response", None)  # requests.HTTPError: artifact uploads through the server
    if response is not None and getattr(response, "status_code", None):
        return int(response.status_code)
    # the server answered (a JSON error, or another body): not an MlflowException made on this side
    if isinstance(exc, RestException) or "failed with error code" in str(exc):
        return exc.get_http_status_code()
    return None


def transient(exc: BaseException) -> bool:
    """A failure that waiting can cure: the server unreachable or timing out, or answering 5xx because its
    database or artifact store is down. A refused login, a missing run or a bad request is not."""
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    text = str(exc)
    if " 401" in text or " 403" in text or "Unauthorized" in text or "Permission denied" in text:
        return False
    if "failed with exception" in text or "failed with timeout exception" in text:  # mlflow: no HTTP answer
        return True
    status = _status(exc)
    return status is not None and status >= 500


def store_error(exc: BaseException) -> TrackingError:
    """One line for a store that failed: which store, why, and the fix."""
    text = str(exc)
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if "401" in text and ("not authenticated" in text or "Unauthorized" in text or "401 != 200" in text):
        who = f"user {user!r} with that password" if user else "requests without credentials"
        return TrackingError(
            f"the MLflow server {tracking_uri()} refused the login (401 Unauthorized: {who}). Fix: set "
            f"MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to your account (the team stack's admin gets "
            f"them from `ganpipe team up DIR`)")
    if "403" in text and ("Permission denied" in text or "Forbidden" in text or "403 != 200" in text):
        return TrackingError(
            f"the MLflow server {tracking_uri()} does not let user {user!r} write here (403 Permission denied). "
            f"Fix: ask the server's admin for EDIT permission on the experiment, or set tracking.experiment to one "
            f"you own")
    return TrackingError(
        f"cannot use the MLflow tracking store {tracking_uri()} ({type(exc).__name__}: {text[:300]}). Fix: "
        f"start the server, unset MLFLOW_TRACKING_URI to use the local sqlite store, or set tracking.enabled: false")


def retrying(what: str, call: Callable[[], T], budget: float, sleep: Callable[[float], None] = time.sleep,
             clock: Callable[[], float] = time.monotonic) -> T:
    """call(), retried after transient failures with backoff (1, 2, 4 ... 30 s) until `budget` seconds have
    passed since the first failure. Prints one note when the store goes away and one when it is back. Every
    caller makes its call idempotent (fixed metric timestamps, fixed image names, the model found before it is
    made), so a call that landed before its answer was lost does not land twice."""
    from mlflow.exceptions import MlflowException

    first, delay = None, 1.0
    while True:
        try:
            result = call()
        except (MlflowException, OSError, ConnectionError) as exc:
            now = clock()
            first = now if first is None else first
            if not transient(exc) or now - first >= budget:
                if first != now:
                    note(f"note: the MLflow store stayed unreachable for {now - first:.0f} s ({RETRY_ENV}="
                         f"{budget:g})")
                raise store_error(exc) from None
            if first == now:
                note(f"note: the MLflow store failed while logging {what} ({type(exc).__name__}); retrying for up "
                     f"to {budget:g} s")
            sleep(min(delay, max(budget - (now - first), 0.0)))
            delay = min(2 * delay, MAX_DELAY_S)
            continue
        if first is not None:
            note(f"note: the MLflow store is back after {clock() - first:.0f} s; {what} logged")
        return result
