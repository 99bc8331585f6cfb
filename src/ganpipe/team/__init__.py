"""Team mode: one MLflow tracking server (PostgreSQL backend, S3 artifacts, logins) and an S3 bucket for the DVC
remote, started and stopped on a data folder by `ganpipe team up/down/status` (stack.py; each server's own
start and stop in servers.py)."""
