"""A run's generator as an MLflow logged model, logged exactly once however often it is tried.

mlflow.pyfunc.log_model creates a new LoggedModel on every call, so a retry after an attempt that landed but
lost its answer, or a resumed run that logs its model again, would leave a second entry. Here the logging is
split into steps that each can be repeated: the model is found by (run, name) before one is created, the run's
output link is added only where missing, the files are uploaded under fixed names (a second upload overwrites
the first), and marking it READY twice is harmless.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable, TypeVar

T = TypeVar("T")
Call = Callable[[str, Callable[[], T]], T]  # (what, call) -> result: the caller's retrying wrapper


def find_or_create(client: Any, call: Call, experiment_id: str, run_id: str, name: str,
                   params: dict[str, str] | None = None, tags: dict[str, str] | None = None,
                   model_type: str | None = None) -> Any:
    """The run's logged model called `name`: the one an earlier attempt made, else a new one. The search runs
    inside the same retried call as the create, so a create whose answer was lost is found, not repeated;
    extras that a store could still hold (older ganpipe versions) are deleted, keeping the oldest."""

    def attempt() -> Any:
        found = sorted(client.search_logged_models([experiment_id], f"source_run_id = '{run_id}' AND name = '{name}'"),
                       key=lambda m: (m.creation_timestamp, m.model_id))
        for extra in found[1:]:
            client.delete_logged_model(extra.model_id)
        if found:
            return found[0]
        return client.create_logged_model(experiment_id, name, run_id, tags, params, model_type)

    return call(f"the {name} model", attempt)


def log_generator(client: Any, call: Call, run_id: str, weights: Path, shape: tuple[int, ...]) -> str:
    """The generator as a pyfunc model from code (see generator_model.py): its safetensors weights and the
    ganpipe package as code, nothing pickled, under one LoggedModel of the run. Returns its models:/ URI."""
    import mlflow.pyfunc
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus

    run = call("the run", lambda: client.get_run(run_id))
    model = find_or_create(client, call, run.info.experiment_id, run_id, "generator", dict(run.data.params))

    def link() -> None:
        outputs = client.get_run(run_id).outputs
        if not any(o.model_id == model.model_id for o in (outputs.model_outputs if outputs else [])):
            client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=0)])

    call("the model's link to its run", link)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "model"
        save_generator_model(local, weights, shape, mlflow.models.Model(
            artifact_path=model.artifact_location, model_uuid=model.model_id, run_id=run_id,
            model_id=model.model_id))
        call("the generator model's files", lambda: client.log_model_artifacts(model.model_id, str(local)))
    call("the generator model's status", lambda: client.finalize_logged_model(model.model_id, LoggedModelStatus.READY))
    # MLflow 3 addresses a logged model as models:/<model id> (runs:/<run>/generator is deprecated for models)
    return f"models:/{model.model_id}"


def save_generator_model(path: Path, weights: Path, shape: tuple[int, ...], mlflow_model: Any) -> None:
    """The model's folder on disk: MLmodel, the weights as an artifact, the package's sources as code."""
    import shutil
    import warnings

    import mlflow.pyfunc
    import numpy as np
    import torch
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec

    import ganpipe
    from ganpipe.track.generator_model import WEIGHTS

    signature = ModelSignature(Schema([ColSpec("long", "seed"), ColSpec("long", "label", required=False)]),
                               Schema([TensorSpec(np.dtype(np.uint8), (-1, *shape))]))
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
        # an input example would make MLflow load and run the model while saving it; the signature is given
        warnings.filterwarnings("ignore", message=".*input example was not provided.*")
        code = Path(tmp) / "ganpipe"  # the package's sources only, no __pycache__
        shutil.copytree(Path(ganpipe.__file__).parent, code, ignore=shutil.ignore_patterns("__pycache__"))
        # explicit requirements: inferring them would import-scan the environment (slow, and no gain)
        mlflow.pyfunc.save_model(
            str(path), python_model=str(Path(__file__).with_name("generator_model.py")),
            artifacts={WEIGHTS: str(weights)}, code_paths=[str(code)], signature=signature,
            mlflow_model=mlflow_model,
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", "safetensors", "pandas"])
