"""The generator model is logged once per run: when the store did the work but its answer was lost (each
server-side step of the upload in turn), and when a run that had logged its model is resumed."""
from __future__ import annotations

import pytest
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

from helpers import runs, stage

# what retrying() sees when a connection drops after the server committed (no HTTP answer: transient)
LOST = "API request to http://127.0.0.1:5000/api failed with exception ConnectionResetError: answer lost"


def lose_the_answer_once(monkeypatch, owner, name: str) -> list[str]:
    """owner.name does its work on the store, then the first call's answer is lost."""
    real, calls = getattr(owner, name), []

    def landed_then_lost(self, *args, **kwargs):
        result = real(self, *args, **kwargs)
        calls.append(name)
        if len(calls) == 1:
            raise MlflowException(LOST)
        return result

    monkeypatch.setattr(owner, name, landed_then_lost)
    return calls


def the_models(client, run_id: str) -> list:
    experiment = client.get_run(run_id).info.experiment_id
    return client.search_logged_models([experiment], f"source_run_id = '{run_id}'")


@pytest.mark.parametrize("owner, method", [
    (SqlAlchemyStore, "create_logged_model"),  # the entry itself
    (SqlAlchemyStore, "log_outputs"),  # the run's link to it
    (LocalArtifactRepository, "log_artifacts"),  # its files
    (SqlAlchemyStore, "finalize_logged_model"),  # READY
])
def test_a_model_upload_whose_answer_was_lost_is_logged_once(tmp_path, monkeypatch, capsys, generator_file, owner,
                                                            method):
    import mlflow
    import pandas as pd
    from mlflow.entities import LoggedModelStatus
    from mlflow.tracking import MlflowClient

    from ganpipe.track.run import MlflowRun

    monkeypatch.chdir(tmp_path)  # the store's artifacts go to ./mlruns
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    calls = lose_the_answer_once(monkeypatch, owner, method)
    with mlflow.start_run(experiment_id=client.create_experiment("t")) as active:
        model_uri = MlflowRun(active.info.run_id).log_generator(generator_file, (1, 28, 28))
    assert calls[0] == method and "the MLflow store is back" in capsys.readouterr().out  # failed, then retried
    run_id = active.info.run_id
    (model,) = the_models(client, run_id)
    assert (model.name, model.status) == ("generator", LoggedModelStatus.READY)
    assert model_uri == f"models:/{model.model_id}" == client.get_run(run_id).data.tags["ganpipe.model_uri"]
    assert [o.model_id for o in client.get_run(run_id).outputs.model_outputs] == [model.model_id]
    images = mlflow.pyfunc.load_model(model_uri).predict(pd.DataFrame({"seed": [0, 1], "label": [3, 4]}))
    assert images.shape == (2, 1, 28, 28)


def test_a_run_resumed_after_its_model_was_logged_ends_with_one_model(workdir, monkeypatch, capsys):
    from mlflow.entities import LoggedModelStatus
    from mlflow.tracking import MlflowClient

    from ganpipe.errors import TrackingError
    from ganpipe.track.run import MlflowRun

    real = MlflowRun.log_generator

    def logged_then_store_gone(self, *args, **kwargs):
        real(self, *args, **kwargs)
        raise TrackingError("cannot use the MLflow tracking store (it went away after the model landed)")

    assert stage("prepare")([]) == 0
    monkeypatch.setattr(MlflowRun, "log_generator", logged_then_store_gone)
    assert stage("train")([]) == 1
    assert (workdir / "checkpoints" / "train.pt").is_file()
    (failed,) = runs(workdir)
    assert failed.info.status == "FAILED"
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    (first,) = the_models(client, failed.info.run_id)

    monkeypatch.setattr(MlflowRun, "log_generator", real)
    capsys.readouterr()
    assert stage("train")([]) == 0
    assert "resuming from checkpoints/train.pt" in capsys.readouterr().out
    (run,) = runs(workdir)
    assert (run.info.run_id, run.info.status) == (failed.info.run_id, "FINISHED")
    (model,) = the_models(client, run.info.run_id)
    assert (model.model_id, model.status) == (first.model_id, LoggedModelStatus.READY)
    assert run.data.tags["ganpipe.model_uri"] == f"models:/{model.model_id}"
    assert [o.model_id for o in client.get_run(run.info.run_id).outputs.model_outputs] == [model.model_id]
