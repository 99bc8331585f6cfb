"""Regenerate the measured blocks of the docs from their benchmarks, each stamped with the machine it ran on.

    python benchmarks/tables.py              # every quick block (a few minutes on 2 cores; after `make repro`)
    python benchmarks/tables.py eval_speed   # the blocks named
    python benchmarks/tables.py --list       # every block, where it is, and whether it is quick

A block in docs/*.md is the text between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`: the command that
printed it, the commit it ran at (marked when src/, stages/, benchmarks/ or the params had uncommitted changes),
the machine (CPU model, the flags that decide bf16, cores, torch) and the script's output verbatim.
Long blocks (inception_speed, pipeline_time, arch_speed, precision_quality, loop_speed_cpu, ada_speed_cpu
and the AVX2 pipeline) run only when named. The colour comparison and the results table
keep their own commands (benchmarks/colour_results.py, benchmarks/results_table.py show --write).
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile")  # what decides whether bf16 is native (docs/speed.md)


@dataclass(frozen=True)
class Block:
    args: tuple[str, ...]  # the script and its arguments, run with this Python from the repository root
    quick: bool  # part of a plain `python benchmarks/tables.py`
    env: tuple[tuple[str, str], ...] = ()


AVX2 = (("ONEDNN_MAX_CPU_ISA", "AVX2"),)  # oneDNN held below AVX512-BF16: what a CPU without native bf16 shows

BLOCKS = {
    "train_speed": Block(("benchmarks/train_speed.py",), True),
    "eval_speed": Block(("benchmarks/eval_speed.py",), True),
    "precision_speed": Block(("benchmarks/precision_speed.py",), True),
    "precision_speed_avx2": Block(("benchmarks/precision_speed.py",), True, AVX2),
    "cpu_profile": Block(("benchmarks/cpu_profile.py",), True),
    "loop_speed_cpu": Block(("benchmarks/loop_speed.py", "--device", "cpu", "--size", "32", "64", "--batch", "64",
                             "--steps", "20", "--warm", "3", "--profile", "0", "--precision", "fp32", "bf16"), False),
    "ada_speed_cpu": Block(("benchmarks/loop_speed.py", "--device", "cpu", "--batch", "64", "--steps", "20", "--warm",
                            "3", "--precision", "fp32", "bf16", "--arms", "ganpipe-r3gan-small",
                            "ganpipe-r3gan-small-ada"), False),
    "tracking_overhead": Block(("benchmarks/tracking_overhead.py",), True),
    "fid_speed": Block(("benchmarks/fid_speed.py",), True),
    "inception_speed": Block(("benchmarks/inception_speed.py",), False),
    "pipeline_time": Block(("benchmarks/pipeline_time.py",), False),
    "pipeline_time_avx2": Block(("benchmarks/pipeline_time.py",), False, AVX2),
    "arch_speed": Block(("benchmarks/arch_speed.py",), False),
    "precision_quality": Block(("benchmarks/precision_quality.py",), False),
}


def machine() -> str:
    """One line naming the machine: CPU model, which of FLAGS it has, cores, torch."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        info = Path("/proc/cpuinfo").read_text()
        model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")),
                     model)
        flags = {f for line in info.splitlines() if line.startswith("flags") for f in line.split(":", 1)[1].split()}
    except OSError:
        pass
    import torch

    have = " ".join(f for f in FLAGS if f in flags) or "none of " + " ".join(FLAGS)
    lacks = [f for f in FLAGS if f not in flags]
    return (f"{model}, {os.cpu_count()} cores, flags {have}" + (f" (no {', '.join(lacks)})" if lacks and flags else "")
            + f"; torch {torch.__version__}")


CODE = ("src", "stages", "benchmarks", "params.yaml", "configs")  # what decides a measured number


def commit() -> str:
    """The commit the numbers are measured at, e.g. `0a80ed0`, or `0a80ed0 with uncommitted changes`."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()

    head = git("rev-parse", "--short=7", "HEAD")
    return head + (" with uncommitted changes" if git("status", "--porcelain", "--", *CODE) else "")


def render(name: str, block: Block, where: str, output: str, at: str) -> str:
    """A block's text: the command, the commit, the machine, the output verbatim."""
    env = " ".join(f"{k}={v}" for k, v in block.env)
    command = " ".join(filter(None, [env, "python", *block.args]))
    return f"`{command}` at commit {at} on {where}:\n\n```\n{output.rstrip()}\n```\n"


def markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"


def replace_block(text: str, name: str, body: str) -> str:
    """`text` with block `name`'s content replaced by `body`; KeyError when the page has no such block."""
    begin, end = markers(name)
    if begin not in text or end not in text:
        raise KeyError(name)
    start, stop = text.index(begin) + len(begin), text.index(end)
    return text[:start] + "\n\n" + body.rstrip("\n") + "\n\n" + text[stop:]


def blocks_in(text: str) -> list[str]:
    return re.findall(r"<!-- bench:(\w+) -->", text)


def page_of(name: str) -> Path:
    for page in sorted(DOCS.glob("*.md")):
        if name in blocks_in(page.read_text()):
            return page
    raise SystemExit(f"no page in docs/ holds the block {name!r} (add {markers(name)[0]} ... {markers(name)[1]})")


def run(name: str) -> None:
    block, page, at = BLOCKS[name], page_of(name), commit()
    env = {**os.environ, **dict(block.env)}
    print(f"$ {' '.join(block.args)}  -> {page.relative_to(ROOT)}", flush=True)
    done = subprocess.run([sys.executable, *block.args], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    page.write_text(replace_block(page.read_text(), name, render(name, block, machine(), done.stdout, at)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"blocks: {', '.join(BLOCKS)}")
    parser.add_argument("--list", action="store_true", help="list the blocks and where they are")
    args = parser.parse_args()
    if args.list:
        for name, block in BLOCKS.items():
            print(f"{name:<22}{'quick' if block.quick else 'long':<7}{page_of(name).relative_to(ROOT)}")
        return
    unknown = sorted(set(args.names) - set(BLOCKS))
    if unknown:
        parser.error(f"unknown block {unknown[0]!r}; blocks: {', '.join(BLOCKS)}")
    for name in args.names or [n for n, b in BLOCKS.items() if b.quick]:
        run(name)


if __name__ == "__main__":
    main()
