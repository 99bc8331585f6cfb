"""`ganpipe team up | down | status DIR`: the team stack on a data folder.

DIR holds everything: PostgreSQL's cluster (pg/), SeaweedFS's volumes (s3/), the logs and pids (run/) and
`credentials.env` (mode 0600), generated on the first `up` and reused after: the admin's and one user's MLflow
passwords, PostgreSQL's password and the S3 keys. `down` stops the servers and keeps the data, so the next `up`
serves the same runs and artifacts. Servers bind to 127.0.0.1 unless told otherwise; ports are consecutive from
--port (default 25400): PostgreSQL, S3, MLflow, then SeaweedFS's master, volume and filer (each of those also
uses its port + 10000 for gRPC).
"""
from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from ganpipe.errors import TeamError
from ganpipe.team import servers

DEFAULT_PORT = 25400
BUCKET = "mlflow"  # MLflow's artifacts; the DVC remote uses the bucket DVC_BUCKET
DVC_BUCKET = "dvc"
USER = "ganpipe"  # the teammates' MLflow login (the admin creates more with MLflow's user API)
OPTUNA = "optuna"  # the database (and its owner role) of `ganpipe tune` studies shared by the team
AUTH_CACHE_S = 60  # how long a worker trusts a checked login (see _up_mlflow)


@dataclass(frozen=True)
class Stack:
    root: Path
    host: str
    port: int

    @property
    def ports(self) -> dict[str, int]:
        names = ("postgres", "s3", "mlflow", "master", "volume", "filer")
        return {name: self.port + i for i, name in enumerate(names)}

    @property
    def tracking_uri(self) -> str:
        return f"http://{self.host}:{self.ports['mlflow']}"

    @property
    def s3_endpoint(self) -> str:
        return f"http://{self.host}:{self.ports['s3']}"

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)


def load(root: Path) -> tuple[Stack, dict[str, str]]:
    """The stack recorded in root/stack.json and its credentials; TeamError when root holds none."""
    root = Path(root).resolve()
    try:
        meta = json.loads((root / "stack.json").read_text())
        creds = read_env(root / "credentials.env")
    except (OSError, ValueError):
        raise TeamError(f"{root} holds no team stack: create one with `ganpipe team up {root}`") from None
    return Stack(root, meta["host"], meta["port"]), creds


def read_env(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))
    return {k.removeprefix("export ").strip(): v.strip() for k, v in pairs}


def _credentials(root: Path) -> dict[str, str]:
    path = root / "credentials.env"
    if path.is_file():
        creds = read_env(path)
        if "GANPIPE_TEAM_OPTUNA_PASSWORD" not in creds:  # a stack made before `ganpipe tune`
            creds["GANPIPE_TEAM_OPTUNA_PASSWORD"] = secrets.token_urlsafe(18)
            with open(path, "a") as out:
                out.write(f"GANPIPE_TEAM_OPTUNA_PASSWORD={creds['GANPIPE_TEAM_OPTUNA_PASSWORD']}\n")
        return creds
    creds = {"GANPIPE_TEAM_ADMIN_PASSWORD": secrets.token_urlsafe(18), "GANPIPE_TEAM_USER": USER,
             "GANPIPE_TEAM_USER_PASSWORD": secrets.token_urlsafe(18),
             "GANPIPE_TEAM_PG_PASSWORD": secrets.token_urlsafe(18),
             "GANPIPE_TEAM_OPTUNA_PASSWORD": secrets.token_urlsafe(18),
             "AWS_ACCESS_KEY_ID": "GP" + secrets.token_hex(9).upper(), "AWS_SECRET_ACCESS_KEY": secrets.token_urlsafe(30),
             "GANPIPE_TEAM_FLASK_SECRET": secrets.token_hex(24)}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others, not even briefly
    with os.fdopen(fd, "w") as out:
        out.write("# ganpipe team stack credentials: keep this file private (mode 0600)\n")
        out.writelines(f"{k}={v}\n" for k, v in creds.items())
    return creds


def client_env(stack: Stack, creds: dict[str, str]) -> dict[str, str]:
    """What a teammate sets: MLflow's three variables, and the database `ganpipe tune` keeps shared studies in
    (its own role: the teammates never get PostgreSQL's admin password)."""
    return {"MLFLOW_TRACKING_URI": stack.tracking_uri, "MLFLOW_TRACKING_USERNAME": creds["GANPIPE_TEAM_USER"],
            "MLFLOW_TRACKING_PASSWORD": creds["GANPIPE_TEAM_USER_PASSWORD"],
            "GANPIPE_TUNE_STORAGE": optuna_url(stack, creds)}


def optuna_url(stack: Stack, creds: dict[str, str]) -> str:
    return (f"postgresql+psycopg://{OPTUNA}:{creds['GANPIPE_TEAM_OPTUNA_PASSWORD']}@{stack.host}:"
            f"{stack.ports['postgres']}/{OPTUNA}")


def _s3_client(stack: Stack, creds: dict[str, str]):
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=stack.s3_endpoint, aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1",
                        config=Config(retries={"max_attempts": 2}, connect_timeout=3, read_timeout=30))


def _check_free(stack: Stack, down: list[str]) -> None:
    """The ports of the servers about to start must be free (another stack, another program)."""
    weed = [stack.ports[k] for k in ("master", "volume", "filer", "s3")]
    ports = {"postgres": [stack.ports["postgres"]], "mlflow": [stack.ports["mlflow"]],
             "s3": weed + [p + 10000 for p in weed]}
    for port in (p for name in down for p in ports[name]):
        if servers.port_open(stack.host, port):
            raise TeamError(f"port {port} on {stack.host} is taken (by another stack or program): stop it, or "
                            f"choose other ports with `ganpipe team up DIR --port N`")


def up(root: Path, host: str = "127.0.0.1", port: int | None = None) -> str:
    """Start whatever of the stack is not running; the lines a teammate needs."""
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    meta_path = root / "stack.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    stack = Stack(root, meta.get("host", host) if port is None else host, port or meta.get("port", DEFAULT_PORT))
    meta_path.write_text(json.dumps({"host": stack.host, "port": stack.port}))
    creds = _credentials(root)
    run = root / "run"
    run.mkdir(exist_ok=True, mode=0o700)
    _check_free(stack, [name for name, up_ in status(root)["servers"].items() if not up_])
    _up_postgres(stack, creds, run)
    _up_s3(stack, creds, run)
    _up_mlflow(stack, creds, run)
    lines = "\n".join(f"export {k}={v}" for k, v in client_env(stack, creds).items())
    remote = "\n".join(" ".join(cmd) for cmd in dvc_remote(stack, creds))
    return (f"team stack up in {root}: MLflow {stack.tracking_uri}, S3 {stack.s3_endpoint}\n"
            f"credentials (admin, user, S3 keys): {root / 'credentials.env'} (mode 0600)\n"
            f"the DVC remote, in each clone (the keys go to .dvc/config.local, which git ignores):\n{remote}\n"
            f"a teammate sets (GANPIPE_TUNE_STORAGE: the team's `ganpipe tune` studies):\n{lines}")


def dvc_remote(stack: Stack, creds: dict[str, str], name: str = "team") -> list[list[str]]:
    """The dvc commands that make the stack's bucket a clone's default remote."""
    return [["dvc", "remote", "add", "-f", "-d", name, f"s3://{DVC_BUCKET}"],
            ["dvc", "remote", "modify", name, "endpointurl", stack.s3_endpoint],
            ["dvc", "remote", "modify", "--local", name, "access_key_id", creds["AWS_ACCESS_KEY_ID"]],
            ["dvc", "remote", "modify", "--local", name, "secret_access_key", creds["AWS_SECRET_ACCESS_KEY"]]]


def _up_postgres(stack: Stack, creds: dict[str, str], run: Path) -> None:
    owner, data = servers.pg_owner(), stack.path("pg", "data")
    if owner:  # root runs PostgreSQL as another user, who must be able to pass through the (unlisted) folder
        stack.root.chmod(0o711)
        closed = [d for d in stack.root.parents if not d.stat().st_mode & 0o001]
        if closed:
            raise TeamError(f"as root, PostgreSQL runs as the system user {servers.PG_USER}, which cannot pass "
                            f"through {closed[0]} to reach {stack.root}: run `chmod o+x {closed[0]}` or put the "
                            f"stack's data folder elsewhere (e.g. under /srv)")
    if not (data / "postmaster.pid").is_file() or not servers.port_open(stack.host, stack.ports["postgres"]):
        if not (data / "PG_VERSION").is_file():
            data.parent.mkdir(exist_ok=True, mode=0o700)
            pwfile = data.parent / ".pw"
            pwfile.write_text(creds["GANPIPE_TEAM_PG_PASSWORD"] + "\n")
            try:
                servers.pg_init(data, pwfile, owner)
            finally:
                pwfile.unlink(missing_ok=True)
        servers.pg_start(data, stack.host, stack.ports["postgres"], data.parent / "postgres.log", owner)
    servers.pg_create_databases(stack.host, stack.ports["postgres"], creds["GANPIPE_TEAM_PG_PASSWORD"],
                                ["mlflow", "mlflow_auth"])
    servers.pg_create_owned_database(stack.host, stack.ports["postgres"], creds["GANPIPE_TEAM_PG_PASSWORD"], OPTUNA,
                                     creds["GANPIPE_TEAM_OPTUNA_PASSWORD"])
    from ganpipe.tune import storage

    storage.open_storage(optuna_url(stack, creds))  # Optuna's tables, made once here: workers may start at once


def _up_s3(stack: Stack, creds: dict[str, str], run: Path) -> None:
    if servers.alive(run / "s3.pid") is None:
        config = run / "s3.json"
        identity = {"name": "ganpipe", "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    "credentials": [{"accessKey": creds["AWS_ACCESS_KEY_ID"],
                                     "secretKey": creds["AWS_SECRET_ACCESS_KEY"]}]}
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"identities": [identity]}, out)
        data = stack.path("s3")
        data.mkdir(exist_ok=True, mode=0o700)
        servers.start(servers.weed_cmd(data, stack.host, stack.ports, config), run / "s3.log", run / "s3.pid")
    s3 = _s3_client(stack, creds)

    def buckets_ready() -> bool:
        try:
            have = {b["Name"] for b in s3.list_buckets()["Buckets"]}
            for bucket in {BUCKET, DVC_BUCKET} - have:
                s3.create_bucket(Bucket=bucket)
            return True
        except Exception:  # noqa: BLE001  (not up yet: connection refused, or its filer still starting)
            return False

    servers.wait_for(buckets_ready, f"the S3 server (SeaweedFS) on {stack.s3_endpoint}", run / "s3.log", 90)


def _up_mlflow(stack: Stack, creds: dict[str, str], run: Path) -> None:
    import requests

    pg = f"postgresql+psycopg://postgres:{creds['GANPIPE_TEAM_PG_PASSWORD']}@{stack.host}:{stack.ports['postgres']}"
    if servers.alive(run / "mlflow.pid") is None:
        auth = run / "basic_auth.ini"
        fd = os.open(auth, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(f"[mlflow]\ndefault_permission = READ\ndatabase_uri = {pg}/mlflow_auth\nadmin_username = admin\n"
                      f"admin_password = {creds['GANPIPE_TEAM_ADMIN_PASSWORD']}\n"
                      f"authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
                      # a password check costs ~0.3 s of CPU by design (PBKDF2), on every request; cached for a
                      # minute per worker it is paid once. A changed password reaches other workers within it.
                      f"auth_cache_ttl_seconds = {AUTH_CACHE_S}\n")
        # secrets travel in the environment and the 0600 ini file, never on a command line (ps shows those)
        env = {**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(auth), "MLFLOW_BACKEND_STORE_URI": f"{pg}/mlflow",
               "MLFLOW_FLASK_SERVER_SECRET_KEY": creds["GANPIPE_TEAM_FLASK_SECRET"],
               "AWS_ACCESS_KEY_ID": creds["AWS_ACCESS_KEY_ID"], "AWS_SECRET_ACCESS_KEY": creds["AWS_SECRET_ACCESS_KEY"],
               "MLFLOW_S3_ENDPOINT_URL": stack.s3_endpoint, "AWS_DEFAULT_REGION": "us-east-1"}
        for key in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            env.pop(key, None)
        servers.start(servers.mlflow_cmd(stack.host, stack.ports["mlflow"], BUCKET), run / "mlflow.log",
                      run / "mlflow.pid", env=env)

    def healthy() -> bool:
        try:
            return requests.get(f"{stack.tracking_uri}/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    servers.wait_for(healthy, f"the MLflow server on {stack.tracking_uri}", run / "mlflow.log", 180)
    admin = ("admin", creds["GANPIPE_TEAM_ADMIN_PASSWORD"])
    api = f"{stack.tracking_uri}/api/2.0/mlflow/users"
    if requests.get(f"{api}/get", params={"username": creds["GANPIPE_TEAM_USER"]}, auth=admin, timeout=10).ok:
        return
    made = requests.post(f"{api}/create", json={"username": creds["GANPIPE_TEAM_USER"],
                                                "password": creds["GANPIPE_TEAM_USER_PASSWORD"]}, auth=admin, timeout=10)
    if not made.ok:
        raise TeamError(f"the MLflow server refused to create user {creds['GANPIPE_TEAM_USER']!r} "
                        f"({made.status_code}: {made.text[:200]})")


def down(root: Path) -> str:
    """Stop every server of the stack; the data stays for the next `up`."""
    stack, _ = load(root)
    run = stack.root / "run"
    stopped = [name for name, done in (("MLflow", servers.stop(run / "mlflow.pid")),
                                       ("S3", servers.stop(run / "s3.pid")),
                                       ("PostgreSQL", servers.pg_stop(stack.path("pg", "data"), servers.pg_owner())))
               if done]
    return f"stopped {', '.join(stopped) or 'nothing (the stack was not running)'}; the data stays in {stack.root}"


def status(root: Path) -> dict:
    """Which servers answer: {"running": all of them, "servers": {name: bool}, ...}."""
    stack, creds = load(root)
    run = stack.root / "run"
    state = {"postgres": servers.port_open(stack.host, stack.ports["postgres"]) and
             (stack.path("pg", "data", "postmaster.pid")).is_file(),
             "s3": servers.alive(run / "s3.pid") is not None and servers.port_open(stack.host, stack.ports["s3"]),
             "mlflow": servers.alive(run / "mlflow.pid") is not None and
             servers.port_open(stack.host, stack.ports["mlflow"])}
    return {"running": all(state.values()), "servers": state, "tracking_uri": stack.tracking_uri,
            "s3_endpoint": stack.s3_endpoint, "root": str(stack.root)}
