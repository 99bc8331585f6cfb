"""Run one DVC stage file as DVC does (`python stages/NAME.py` in the repository root) and record what it used:
every ganpipe module it imported and every file it opened for reading. tests/stages/test_stage_deps.py compares that
with the stage's deps in dvc.yaml.

    python tests/stage_trace.py OUT.json stages/NAME.py

Reads are seen through Python's audit hook ("open" events: builtins.open, io.open, os.open). safetensors opens
files in Rust, past that hook, so its two entry points are wrapped to raise the same event.
"""
from __future__ import annotations

import json
import os
import runpy
import sys

reads: list[str] = []


def _hook(event: str, args: tuple) -> None:
    if event != "open":
        return
    path, mode, flags = args
    if isinstance(path, int):  # an already-open descriptor
        return
    writing = (mode is not None and any(c in mode for c in "wax+")) or (
        mode is None and flags is not None and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
    # a real file: rmtree's and scandir's opens by name relative to a directory descriptor are not reads
    if not writing and os.path.isfile(path):
        reads.append(os.path.abspath(os.fsdecode(path)))


def _traced(opener):
    def wrapper(filename, *args, **kwargs):
        sys.audit("open", os.fspath(filename), "rb", 0)
        return opener(filename, *args, **kwargs)
    return wrapper


def main(out: str, stage: str) -> int:
    import safetensors
    import safetensors.torch

    safetensors.safe_open = _traced(safetensors.safe_open)
    safetensors.torch.safe_open = _traced(safetensors.torch.safe_open)  # what load_file calls
    sys.addaudithook(_hook)
    sys.argv = [stage]
    sys.path.insert(0, os.path.dirname(os.path.abspath(stage)))
    code = 0
    try:
        runpy.run_path(stage, run_name="__main__")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    modules = sorted({os.path.abspath(m.__file__) for name, m in list(sys.modules.items())
                      if (name == "ganpipe" or name.startswith("ganpipe.")) and getattr(m, "__file__", None)})
    with open(out, "w") as f:
        json.dump({"exit": code, "modules": modules, "reads": sorted(set(reads)), "cwd": os.getcwd()}, f, indent=1)
    return code


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
