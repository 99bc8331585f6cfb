"""A trained generator found from what a user remembers of it: an MLflow run id, or a DVC experiment or run name
(the newest finished training run of that name). Its weights come back as the safetensors file the run logged
inside its MLflow model, downloaded, never unpickled; this works on the local store and on a team server (with
MLFLOW_TRACKING_USERNAME / _PASSWORD)."""
from __future__ import annotations

import re
from pathlib import Path

from ganpipe.errors import TrackingError
from ganpipe.keys import KIND_TAG, MODEL_URI_TAG
from ganpipe.params.config import TrackingConfig
from ganpipe.track.failures import store_error
from ganpipe.track.store import tracking_uri
from ganpipe.track.tracking import RunRecord, find_runs, record

RUN_ID = re.compile(r"[0-9a-f]{32}")
WEIGHTS_FILE = "artifacts/generator.safetensors"  # inside the logged model (generator_model.py's artifact)


def training_run(cfg: TrackingConfig, ref: str) -> RunRecord:
    """The training run `ref` names: a run id, else the newest finished training run whose DVC experiment name
    (or run name) is `ref`."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    if RUN_ID.fullmatch(ref):
        try:
            run = record(MlflowClient(tracking_uri()).get_run(ref))
        except MlflowException as exc:
            if "RESOURCE_DOES_NOT_EXIST" in str(exc.error_code) or "not found" in str(exc).lower():
                raise TrackingError(f"no MLflow run {ref} in {tracking_uri()}; check the id (`ganpipe compare` "
                                    f"lists runs) or MLFLOW_TRACKING_URI") from None
            raise store_error(exc) from None
    else:
        named = find_runs(cfg, {"dvc.exp_name": ref}) or find_runs(cfg, {"mlflow.runName": ref})
        named = [r for r in named if r.tags.get(KIND_TAG, "training") == "training"]
        if not named:
            raise TrackingError(f"no finished training run named {ref!r} in experiment {cfg.experiment!r} of "
                                f"{tracking_uri()}; give a run id, an experiment name from `dvc exp show`, or a "
                                f"generator file such as models/generator.safetensors")
        run = named[0]
    if run.tags.get(KIND_TAG, "training") != "training":
        raise TrackingError(f"MLflow run {run.run_id} is an evaluation run; give the training run it scored "
                            f"({run.tags.get('ganpipe.evaluates_run', 'see its parent run')})")
    return run


def download_generator(run: RunRecord, into: Path) -> Path:
    """The generator weights of a training run, downloaded into `into`."""
    import mlflow
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(tracking_uri())
    uri = run.tags.get(MODEL_URI_TAG)
    try:
        if uri is None:  # runs from before the tag: find the model the run logged
            models = mlflow.search_logged_models(experiment_ids=[mlflow.get_run(run.run_id).info.experiment_id],
                                                 filter_string=f"source_run_id = '{run.run_id}'", output_format="list")
            if not models:
                raise TrackingError(f"MLflow run {run.run_id} ({run.name}) logged no generator model: it did not "
                                    f"finish training; use a finished run, or the generator file itself")
            uri = f"models:/{models[0].model_id}"
        # the whole model (weights and ganpipe's code, a few MB): a models:/ URI names no file inside it
        local = Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(into))) / WEIGHTS_FILE
    except MlflowException as exc:
        raise store_error(exc) from None
    if not local.is_file():
        raise TrackingError(f"the generator model {uri} of MLflow run {run.run_id} holds no {WEIGHTS_FILE}; it was "
                            f"not logged by ganpipe's train stage")
    return local
