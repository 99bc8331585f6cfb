"""How a logging call meets a store that fails under it: which failures are waited out, for how long, and
the names that make a retried image upload land once (pure functions; the real outages are in test_team.py)."""
from __future__ import annotations

import pytest
import requests
from mlflow.exceptions import MlflowException, RestException

from ganpipe.errors import ConfigError, TrackingError
from ganpipe.track import failures
from ganpipe.track.run import image_files


class Clock:
    def __init__(self):
        self.now, self.slept = 0.0, []

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


def http_error(status: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    return requests.HTTPError(f"{status} Server Error", response=response)


@pytest.mark.parametrize("exc, expected", [
    (MlflowException("API request to http://127.0.0.1:1/api failed with exception HTTPConnectionPool(...): "
                     "Max retries exceeded (Caused by NewConnectionError: Connection refused)"), True),
    (MlflowException("API request to http://h/api failed with timeout exception ReadTimeout."), True),
    (RestException({"error_code": "INTERNAL_ERROR", "message": "(psycopg.OperationalError) server closed"}), True),
    (MlflowException("API request to endpoint /api failed with error code 502 != 200. Response body: 'bad gw'"), True),
    (http_error(503), True),
    (ConnectionError("reset"), True),
    (RestException({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no run"}), False),
    (RestException({"error_code": "INVALID_PARAMETER_VALUE", "message": "bad"}), False),
    (MlflowException("API request to endpoint /api failed with error code 401 != 200. Response body: "
                     "'You are not authenticated'"), False),
    (http_error(403), False),
    (MlflowException("a local mistake, no server involved"), False),  # INTERNAL_ERROR made on this side
    (OSError("No space left on device"), False),
])
def test_transient_is_only_what_waiting_can_cure(exc, expected):
    assert failures.transient(exc) is expected


def test_a_store_back_within_the_budget_is_waited_for_with_backoff(capsys):
    clock, calls = Clock(), []

    def call():
        calls.append(clock.now)
        if len(calls) <= 5:
            raise MlflowException("API request to x failed with exception Connection refused")
        return "done"

    assert failures.retrying("the metrics of step 3", call, 60, clock.sleep, lambda: clock.now) == "done"
    assert clock.slept == [1, 2, 4, 8, 16]
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and "retrying for up to 60 s" in out[0] and "back after 31 s" in out[1]


def test_a_store_gone_past_the_budget_is_one_error_after_the_budget():
    clock = Clock()

    def call():
        raise http_error(500)

    with pytest.raises(TrackingError, match="cannot use the MLflow tracking store"):
        failures.retrying("x", call, 20, clock.sleep, lambda: clock.now)
    assert sum(clock.slept) == 20 and clock.slept[-1] == 5  # 1 + 2 + 4 + 8, then what the budget has left


def test_a_refused_login_is_not_retried():
    clock = Clock()

    def call():
        raise MlflowException("API request to endpoint /x failed with error code 401 != 200. Response body: "
                              "'You are not authenticated. Please see ...'")

    with pytest.raises(TrackingError, match="401 Unauthorized"):
        failures.retrying("x", call, 300, clock.sleep, lambda: clock.now)
    assert clock.slept == []


@pytest.mark.parametrize("text, expected", [("", 300.0), ("0", 0.0), ("12.5", 12.5)])
def test_retry_budget_from_the_environment(monkeypatch, text, expected):
    monkeypatch.setenv(failures.RETRY_ENV, text)
    assert failures.retry_budget() == expected


@pytest.mark.parametrize("text", ["-1", "soon", "inf", "nan"])
def test_a_bad_retry_budget_is_one_clear_error(monkeypatch, text):
    monkeypatch.setenv(failures.RETRY_ENV, text)
    with pytest.raises(ConfigError, match=f"{failures.RETRY_ENV}=.* is not a number of seconds"):
        failures.retry_budget()


def test_image_files_finds_each_key_and_step_and_whether_it_is_complete():
    names = ["samples+step+0+timestamp+17+0a-1.png", "samples+step+0+timestamp+17+0a-1+compressed.webp",
             "samples+step+1+timestamp+18+0b-2.png",  # its thumbnail never arrived
             "eval~grid+step+12+timestamp+19+0c.png", "eval~grid+step+12+timestamp+19+0c+compressed.webp",
             "notes.txt"]
    assert image_files(names) == {("samples", 0): ("samples+step+0+timestamp+17+0a-1", True),
                                  ("samples", 1): ("samples+step+1+timestamp+18+0b-2", False),
                                  ("eval/grid", 12): ("eval~grid+step+12+timestamp+19+0c", True)}
