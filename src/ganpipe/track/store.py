"""Where the MLflow store is, decided once: $MLFLOW_TRACKING_URI if set, else sqlite:///<root>/mlflow.db with
artifacts in <root>/mlruns, where <root> is $DVC_ROOT (DVC sets it to the real repository root even when `dvc exp
run --temp/--queue` runs the stage in a temporary copy) or else the current directory. So every run lands in the
one store. Kept apart from tracking.py so that failures.py can name the store without importing tracking.py."""
from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    return Path(os.environ.get("DVC_ROOT") or os.getcwd()).resolve()


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root() / 'mlflow.db'}"
