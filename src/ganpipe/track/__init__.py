"""Records of runs: MLflow (the only mlflow importer), git/DVC provenance, reproduce, share, reports."""
