"""`ganpipe push` / `ganpipe pull`: `dvc push` / `dvc pull` with their failure modes named before anything moves.

DVC's own messages for the common mistakes are indirect ("Checkout failed ... Is your cache up to date?" when
no remote is set, a list of md5s when the remote lacks files, "Can't remove the following unsaved files" after
fetching when a pulled output was edited here). These checks say which remote, what is wrong and
what to run, and exit non-zero before any file is touched. The transfer itself is plain DVC.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ganpipe.errors import ShareError

ADD_REMOTE = ("`dvc remote add -d storage s3://my-bucket/ganpipe` (S3, needs `pip install dvc-s3`) or "
              "`dvc remote add -d storage /mnt/shared/ganpipe` (a shared folder); commit .dvc/config to share it")


def _dvc(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True)


def dvc_error(text: str) -> str:
    """DVC's last ERROR line with the lines that follow it on one line: DVC lists the files an error is about
    below the line ("Checkout failed for following targets:", then one path per line)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    starts = [i for i, line in enumerate(lines) if line.startswith("ERROR")]
    if not starts:
        return lines[-1] if lines else "(no output)"
    first, *rest = lines[starts[-1]:][:11]
    return " ".join([first.removeprefix("ERROR: ").removeprefix("ERROR:"), *rest]).strip()


def _last_error(out: subprocess.CompletedProcess) -> str:
    return dvc_error(out.stderr + out.stdout)


def _modified_outputs(root: Path) -> list[str]:
    """Outputs present here whose bytes differ from this commit's dvc.lock (edited, or made by another run):
    `dvc pull` stops at them, after fetching, to ask before it overwrites them."""
    out = _dvc(root, "data", "status", "--json")
    text = out.stdout.strip()
    if out.returncode != 0 or "{" not in text:
        return []  # nothing DVC can compare yet; the transfer itself reports a real problem
    return sorted(json.loads(text[text.find("{"):]).get("uncommitted", {}).get("modified", []))


def remote(root: Path, name: str | None = None, exists: bool = True) -> tuple[str, str]:
    """(name, url) of the remote to use: `name`, else the default, else the only one. A local-folder remote
    must exist (`exists`), or at least its parent (a first push creates the folder; a typo should not)."""
    # `dvc config --list` (all config levels merged) rather than `dvc remote list`, whose table wraps long URLs
    settings = dict(line.split("=", 1) for line in _dvc(root, "config", "--list").stdout.splitlines() if "=" in line)
    remotes = {k[len("remote."):-len(".url")]: v for k, v in settings.items()
               if k.startswith("remote.") and k.endswith(".url")}
    if not remotes:
        raise ShareError(f"no DVC remote is configured in {root}, so there is nowhere to push to or pull from. "
                         f"Add one: {ADD_REMOTE}")
    if name is None:
        default = settings.get("core.remote", "")
        if not default and len(remotes) > 1:
            raise ShareError(f"several DVC remotes ({sorted(remotes)}) and no default: pass --remote NAME or "
                             f"run `dvc remote default NAME`")
        name = default or next(iter(remotes))
    if name not in remotes:
        raise ShareError(f"no DVC remote named {name!r}; configured: {sorted(remotes)}")
    url = remotes[name]
    local = url.removeprefix("file://")
    # DVC stores a relative folder relative to the config file, which lives in .dvc/
    folder = root / ".dvc" / local
    if "://" not in local and not (folder if exists else folder.parent).exists():
        raise ShareError(f"DVC remote {name!r} is the folder {url}, which does not exist here"
                         f"{'' if exists else ' (nor its parent)'}: mount it, or fix the URL with "
                         f"`dvc remote modify {name} url NEW_URL`")
    return name, url


def _cloud_status(root: Path, name: str, url: str) -> dict[str, str]:
    out = _dvc(root, "status", "--cloud", "--json", "-r", name)
    if out.returncode != 0:
        raise ShareError(f"cannot use DVC remote {name!r} ({url}): {_last_error(out)}. Check the URL, network and "
                         f"credentials (`dvc remote modify {name} ...`)")
    text = out.stdout.strip()
    return json.loads(text[text.find("{"):]) if "{" in text else {}


def _transfer(root: Path, verb: str, name: str, url: str, lacking: str) -> str:
    """`dvc push|pull -r name`, unless the cloud status has outputs in neither the cache nor the remote:
    then ShareError(lacking + the list), before anything moves."""
    missing = sorted(path for path, state in _cloud_status(root, name, url).items() if state == "missing")
    if missing:
        raise ShareError(lacking.format(n=len(missing), paths=", ".join(missing)))
    direction = {"push": "to", "pull": "from"}[verb]
    out = _dvc(root, verb, "-r", name)
    if out.returncode != 0:
        raise ShareError(f"dvc {verb} {direction} {name!r} ({url}) failed: {_last_error(out)}")
    return f"{verb}ed {direction} {name} ({url})"


def pull(root: Path, name: str | None = None) -> str:
    """Fetch this commit's outputs from the remote; refuses, changing nothing, when the remote lacks any."""
    name, url = remote(root, name)
    if modified := _modified_outputs(root):
        raise ShareError(f"{len(modified)} output(s) here differ from this commit's and would be overwritten by the "
                         f"pull: {', '.join(modified)}. Move them aside (or delete them if they are not needed), then "
                         f"run `ganpipe pull` again. Nothing was changed here")
    return _transfer(root, "pull", name, url,
                     f"DVC remote {name!r} ({url}) does not have {{n}} output(s) of this commit: {{paths}}. Whoever "
                     f"made them must run `ganpipe push` from their clone, or rebuild them here with `make repro`. "
                     f"Nothing was changed here")


def push(root: Path, name: str | None = None) -> str:
    """Send this commit's outputs to the remote; refuses when this clone does not have them all."""
    name, url = remote(root, name, exists=False)
    return _transfer(root, "push", name, url,
                     "this clone does not have {n} output(s) to push: {paths}. Build them with `make repro` (or "
                     "`ganpipe pull` them) first. Nothing was pushed")
