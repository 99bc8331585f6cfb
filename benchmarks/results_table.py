"""The results table of docs/benchmarks.md: GAN variants on the default data at one training budget, from MLflow runs.

  python benchmarks/results_table.py run [NAME ...]   # one `dvc exp run --temp -n NAME` per row (~35 min)
  python benchmarks/results_table.py show [--write]  # the table from the MLflow store; --write rewrites it in docs/benchmarks.md

Each row is a real DVC experiment on top of the committed params.yaml (the recommended config), logged to the
repo-root MLflow store like any other run; `show` reads the newest finished run of each name.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from ganpipe.params import config, overlays
from ganpipe.results import report
from ganpipe.track import tracking

ROOT = Path(__file__).resolve().parents[1]
SEED = "configs/seed_recipe.yaml"
BUDGET = ["train.epochs=40", "train.batch_size=64"]  # every row: 40 epochs of 4,500 images = 2,800 G steps
# name -> (override files, extra assignments, description); later assignments win
ROWS: dict[str, tuple[list[str], list[str], str]] = {
    "seed-literal": ([SEED], [], "the seed article's MLP recipe (BCE, Adam, fp32)"),
    "seed-sn": ([SEED], ["model.d_spectral_norm=true"], "seed + spectral norm in D"),
    "seed-gp": ([SEED], ["train.loss=wgan-gp", "train.gp_weight=10"], "seed model, WGAN-GP loss"),
    "seed-sn-gp": ([SEED], ["model.d_spectral_norm=true", "train.loss=wgan-gp", "train.gp_weight=10"],
                   "seed model, WGAN-GP + spectral norm"),
    "dcgan-bce": ([], ["model.conditional=false", "train.loss=bce"], "unconditional DCGAN, minimax BCE"),
    "dcgan-nonsaturating": ([], ["model.conditional=false", "train.loss=nonsaturating"],
                            "unconditional DCGAN, non-saturating BCE"),
    "dcgan-hinge": ([], ["model.conditional=false", "train.loss=hinge"], "unconditional DCGAN, hinge"),
    "dcgan-wgan-gp": ([], ["model.conditional=false", "train.loss=wgan-gp", "train.gp_weight=10",
                           "model.d_spectral_norm=false"], "unconditional DCGAN, WGAN-GP (no SN)"),
    "dcgan-lsgan": ([], ["model.conditional=false", "train.loss=lsgan"], "unconditional DCGAN, least squares"),
    "recommended-diffaug": ([], ["train.augment=[translation,cutout]"], "recommended + DiffAugment"),
    "recommended": ([], [], "**params.yaml default**: conditional DCGAN, hinge, SN, EMA"),
}
BEGIN, END = "<!-- results-table:begin -->", "<!-- results-table:end -->"


def assignments(name: str) -> list[str]:
    files, extra, _ = ROWS[name]
    merged: dict[str, str] = {}
    for item in [a for f in files for a in overlays.assignments(overlays.read(ROOT / f))] + extra + BUDGET:
        key, _, value = item.partition("=")
        merged[key] = value
    return [f"{k}={v}" for k, v in merged.items()]


def run(names: list[str]) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for name in names:
        subprocess.run([sys.executable, "-m", "dvc", "exp", "remove", name], cwd=ROOT, env=env,
                       capture_output=True)  # a re-run replaces the experiment of that name
        # -f: a row whose params match a cached result (e.g. `recommended`) still trains and logs its own run
        cmd = [sys.executable, "-m", "dvc", "exp", "run", "--temp", "-f", "-n", name]
        cmd += [arg for a in assignments(name) for arg in ("-S", a)]
        print("$", " ".join(cmd[2:]), flush=True)
        subprocess.run(cmd, cwd=ROOT, env=env, check=True)


def show(write: bool) -> None:
    cfg = config.load(ROOT / "params.yaml")
    os.environ.setdefault("DVC_ROOT", str(ROOT))  # the repo-root store, wherever this is run from
    runs = report.latest_per_name(tracking.search_runs(cfg.tracking), list(ROWS))
    if runs.empty:
        sys.exit("no finished runs of the table's experiments yet; run `python benchmarks/results_table.py run`")
    table = report.results_markdown(runs, {n: d for n, (_, _, d) in ROWS.items()})
    best = report.best_by(runs, "metrics.eval/fid")
    machines = sorted({str(m) for m in runs.get("tags.env.cpu", []) if isinstance(m, str)}) or ["(not tagged)"]
    table += f"\nLowest FID: `{best}`. Measured on: {'; '.join(machines)}. Regenerate: " \
             f"`python benchmarks/results_table.py run && python benchmarks/results_table.py show --write`.\n"
    print(table)
    if write:
        page = ROOT / "docs" / "benchmarks.md"
        page.write_text(report.replace_between(page.read_text(), BEGIN, END, table))
        print(f"wrote the table into {page}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="run the table's experiments (all, or the names given)")
    run_p.add_argument("names", nargs="*", metavar="NAME", help=f"rows: {', '.join(ROWS)}")
    show_p = sub.add_parser("show", help="print the table from the MLflow runs")
    show_p.add_argument("--write", action="store_true", help="also write it into docs/benchmarks.md")
    args = parser.parse_args()
    if args.command == "run":
        unknown = sorted(set(args.names) - set(ROWS))
        if unknown:
            parser.error(f"unknown row {unknown[0]!r}; rows: {', '.join(ROWS)}")
        run(args.names or list(ROWS))
    else:
        show(args.write)


if __name__ == "__main__":
    main()
