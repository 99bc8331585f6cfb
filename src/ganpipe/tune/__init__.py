"""`ganpipe tune`: Optuna studies over the pipeline's params, each trial a DVC experiment with an MLflow run."""
