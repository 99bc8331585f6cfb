"""`ganpipe run`: config overlays, `-S` values and seeds turned into `dvc exp run` commands, checked by the
strict params loader before any of them starts, then run with this project's venv first on PATH.

The commands are checked by applying their `-S` values exactly as DVC will (its own Hydra-based
`apply_overrides`, on a copy of params.yaml), so a value DVC would read differently fails here, not mid-queue.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ganpipe.errors import ConfigError
from ganpipe.params import config, overlays
from ganpipe.params.overrides import changed_params


@dataclass
class Command:
    """One `dvc exp run`: its arguments after `dvc`, and the params each of its sweep points resolves to."""

    args: list[str]
    resolved: list[dict] = field(default_factory=list)

    def line(self) -> str:
        return shlex.join(["dvc", *self.args])


def parse_seeds(text: str | None) -> list[int]:
    if not text:
        return []
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds must be comma-separated integers such as 0,1,2, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds must name each seed once, e.g. 0,1,2, got {text!r}")
    return seeds


def plan(root: Path, configs: list[str], sets: list[str], name: str | None, seeds: list[int], queue: bool,
         temp: bool) -> list[Command]:
    """The `dvc exp run` commands for these arguments, each checked; ConfigError naming the culprit otherwise."""
    base = _params_tree(root)
    tree, assigned, names = base, [], []
    for given in configs:
        path = overlays.find(given, root)
        overlay = overlays.read(path)
        tree = overlays.merge(tree, overlay, str(path))
        try:
            config.from_dict(tree)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        assigned += overlays.assignments(overlay)
        names.append(path.stem)
    if names:
        assigned.append(f"tracking.config={overlays.literal(names)}")
    assigned = _last_wins(assigned)
    flags = (["--queue"] if queue else []) + (["--temp"] if temp else [])
    commands = []
    for seed in seeds or [None]:
        args = ["exp", "run", *flags]
        if name:
            args += ["-n", name if seed is None else f"{name}-s{seed}"]
        extra = [] if seed is None else [f"train.seed={seed}"]
        for assignment in assigned + list(sets) + extra:
            args += ["-S", assignment]
        commands.append(Command(args, _resolve(root, assigned + list(sets) + extra, queue)))
    return commands


def _last_wins(assignments: list[str]) -> list[str]:
    """One assignment per key, the last one given (a later config overrides an earlier one)."""
    by_key: dict[str, str] = {}
    for assignment in assignments:
        key = assignment.partition("=")[0]
        by_key.pop(key, None)
        by_key[key] = assignment
    return list(by_key.values())


def _params_tree(root: Path) -> dict:
    path = root / "params.yaml"
    if not path.is_file():
        raise ConfigError(f"no params.yaml in {root}: run `ganpipe run` in a ganpipe project (a clone of it)")
    return config.load(path).raw


def _resolve(root: Path, assignments: list[str], queue: bool) -> list[dict]:
    """The params tree of each sweep point, made by DVC's own `-S` code on a copy of params.yaml, each loaded
    strictly."""
    from dvc.exceptions import InvalidArgumentError
    from dvc.utils.hydra import apply_overrides, get_hydra_sweeps

    try:
        sweeps = get_hydra_sweeps({"params.yaml": assignments})
    except Exception as exc:  # hydra's parse errors have no common public base
        raise ConfigError(f"-S {assignments}: not an assignment DVC can read ({_first_line(exc)})") from None
    if len(sweeps) > 1 and not queue:
        raise ConfigError("-S with comma-separated values is a sweep: it needs --queue (then `dvc queue start`)")
    trees = []
    for point in sweeps:
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "params.yaml"
            copy.write_text((root / "params.yaml").read_text())
            try:
                apply_overrides(copy, point["params.yaml"])
            except InvalidArgumentError as exc:
                cause = exc.__cause__ or exc
                raise ConfigError(f"-S {point['params.yaml']}: {_first_line(cause)}; keys are params.yaml's "
                                  f"section.key, values as in YAML") from None
            tree = yaml.safe_load(copy.read_text())
        config.from_dict(tree)
        trees.append(tree)
    return trees


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def dry_run(root: Path, commands: list[Command]) -> str:
    """What `ganpipe run --dry-run` prints: the resolved params of the first run, what every run changes, and
    the commands."""
    base = config.load(root / "params.yaml")
    first = commands[0].resolved[0]
    lines = ["# resolved params (the first run):", yaml.safe_dump(first, sort_keys=False).rstrip(), "",
             "# what each run changes from params.yaml:"]
    for command in commands:
        for tree in command.resolved:
            changed = changed_params(config.from_dict(tree), base.raw)
            shown = [f"{k}={overlays.literal(v)}" for k, v in sorted(changed.items())]
            lines.append("  " + ("; ".join(shown) or "nothing"))
    lines += ["", "# would run (with this project's venv first on PATH):", *(c.line() for c in commands)]
    return "\n".join(lines)


def execute(root: Path, commands: list[Command], queue: bool) -> int:
    """Run the commands in turn (stopping at the first that fails), output streamed; their exit status."""
    venv = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{venv}{os.pathsep}{os.environ.get('PATH', '')}"}  # the stages' `python`
    for command in commands:
        print(f"$ {command.line()}", flush=True)
        code = subprocess.run([sys.executable, "-m", "dvc", *command.args], cwd=root, env=env).returncode
        if code != 0:
            return code
    if queue:
        print(f"queued {len(commands)} command(s); run them with `dvc queue start -j 2` and watch "
              f"`dvc queue status`; compare with `ganpipe compare --group-by config`")
    return 0
