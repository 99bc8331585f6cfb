"""What runs' results mean to a user: the score registry (scores.py: every score's key, label, kind and format),
reproducing a result and its verdict (reproduce.py, verdict.py), comparison tables and reports (report.py), the
landing view of the MLflow UI (landing.py), and pushing/pulling results to a team (share.py). MLflow itself is
reached only through ganpipe.track."""
