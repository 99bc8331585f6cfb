"""The MLflow adapter, and the only importer of mlflow: where the store is (store.py), opening and finding runs
(tracking.py), logging to one (run.py), what a store's failure means to the user (failures.py), the generator as
an MLflow model (generator_model.py, logged once per run by logged_model.py), git/DVC provenance tags
(provenance.py) and moving runs between stores (migrate.py). What a run's results mean (reproduce, compare,
report, share) lives in ganpipe.results."""
