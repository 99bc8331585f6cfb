"""The `ganpipe` command: evaluate samples made anywhere, compare runs, reproduce a result, push and pull.

User errors (ganpipe.errors.UserError) become one clear line on stderr and a non-zero exit, no traceback: the
message already says what to fix. The DVC stages have their own runner (ganpipe.pipeline.run_stage).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from ganpipe.errors import ConfigError, TrackingError, run_guarded
from ganpipe.params import config
from ganpipe.results import scores


def _printed(call: Callable[[], str]) -> int:
    """Run a command that returns its report as text; print it on success."""
    code, text = run_guarded(call)
    if code == 0:
        print(text)
    return code


def _rows(space: dict, keys: tuple[str, ...]) -> list[str]:
    lines = []
    for key in keys:
        if space["fake"].get(key) is not None:
            label, fake, real = scores.BY_KEY[key].label, space["fake"][key], space["real"].get(key)
            cells = f"{label:<22}{scores.shown(key, fake):>12}"
            lines.append(cells + (f"{scores.shown(key, real):>14}" if real is not None else ""))
    return lines


def score_table(result: dict) -> str:
    """The scores of the samples beside the real-data ceiling, as aligned text: one block per feature space."""
    lines = []
    if "fake" in result:
        p = result["protocol"]
        lines += [f"{'classifier space':<22}{'samples':>12}{'real ceiling':>14}", *_rows(result, scores.CLASSIFIER_TABLE),
                  f"protocol: {p['n_fake']} samples vs {p['n_holdout']} held-out images; features "
                  f"{p['feature_dim']}-d from classifier {p['classifier_sha256'][:12]}"]
    if "inception" in result:
        space, p = result["inception"], result["inception"]["protocol"]
        lines += [f"{'Inception-V3 space':<22}{'samples':>12}{'real ceiling':>14}",
                  *_rows(space, scores.INCEPTION_TABLE),
                  f"protocol: {p['n_fake']} samples (ceiling: {p['n_holdout']} held-out images) vs the "
                  f"{p['n_train']} training images; FID depends on n: compare only equal n"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from ganpipe.data.imagefiles import RANGES

    parser = argparse.ArgumentParser(prog="ganpipe", description="ganpipe: reproducible GAN experiments")
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="score images made anywhere with this project's protocol")
    ev.add_argument("--samples", required=True, type=Path,
                    help=".npz, .npy, .pt, .safetensors or a folder of PNGs; uint8, or floats with a known range")
    ev.add_argument("--value-range", choices=list(RANGES),
                    help="what float pixels mean (black,white): needed unless the file says it or holds negatives")
    ev.add_argument("--out", type=Path, help="JSON file to write (default: <samples>.eval.json)")
    ev.add_argument("--features", choices=list(config.FEATURES),
                    help="feature space(s) to score in (default: evaluate.features of the params); inception is the "
                         "standard space of published FIDs and needs no labels or classifier")
    ev.add_argument("--mlflow", metavar="RUN_NAME", help="also log the scores as an MLflow run of this name")
    cmp = sub.add_parser("compare", help="compare MLflow runs: differing params and eval scores, and a plot")
    cmp.add_argument("--experiment", help="MLflow experiment (default: tracking.experiment of params.yaml)")
    cmp.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="only runs with this tag")
    cmp.add_argument("--runs", nargs="+", metavar="RUN_ID", help="only these runs")
    cmp.add_argument("--sort", default="eval/fid", help="column to sort by (default: eval/fid)")
    cmp.add_argument("--descending", action="store_true")
    cmp.add_argument("--format", choices=["md", "csv"], default="md")
    cmp.add_argument("--out", type=Path, help="write the table here instead of printing it")
    cmp.add_argument("--plot", type=Path, help="write a PNG: the --metrics across runs and the loss curves")
    cmp.add_argument("--metrics", default="eval/is,eval/fid", help="comma-separated metrics for --plot")
    rep = sub.add_parser("reproduce", help="re-run a logged result from its commit in a git worktree and check it")
    rep.add_argument("target", help="MLflow run id, git commit/ref, or DVC experiment name")
    rep.add_argument("--tolerance", type=float, metavar="R",
                     help="accept scores within relative R (e.g. 0.1) instead of expecting identical bytes; "
                          "default: identical on the same machine kind, 0.1 otherwise")
    rep.add_argument("--keep", action="store_true", help="keep the worktree (and its MLflow store) afterwards")
    rep.add_argument("--out", type=Path, help="also write the checks as JSON")
    for verb, what in (("push", "send this commit's DVC outputs to a remote"),
                       ("pull", "fetch this commit's DVC outputs from a remote")):
        share_cmd = sub.add_parser(verb, help=f"{what} (dvc {verb}, with clear errors)")
        share_cmd.add_argument("--remote", "-r", help="DVC remote name (default: the default remote)")
    node = sub.add_parser("train-node", help="join a training over several machines (train.nodes > 1) as node K; "
                                             "node 0 is the machine running `dvc repro`")
    node.add_argument("--node-rank", type=int, required=True, metavar="K", help="this machine's node rank, 1 or more")
    team = sub.add_parser("team", help="the team stack: MLflow server (PostgreSQL, S3 artifacts, logins) and an S3 "
                                        "bucket for DVC, on a data folder")
    team.add_argument("action", choices=["up", "down", "status"])
    team.add_argument("dir", type=Path, help="the stack's data folder (created by `up`; kept by `down`)")
    team.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    team.add_argument("--port", type=int, help="first of its consecutive ports (default: as before, else 25400)")
    imp = sub.add_parser("import-runs", help="copy a local MLflow history (runs, metrics, images, tags, models) onto "
                                             "the server in $MLFLOW_TRACKING_URI; safe to run again")
    imp.add_argument("--from", dest="source", metavar="URI",
                     help="the store to copy from (default: this project's sqlite:///mlflow.db)")
    imp.add_argument("--experiment", action="append", metavar="NAME", help="only this experiment (repeatable)")
    args = parser.parse_args(argv)
    if args.command == "import-runs":
        return _printed(lambda: import_runs(args))
    if args.command == "team":
        return _team(args)
    if args.command == "train-node":
        return _train_node(args)
    if args.command in ("push", "pull"):
        from ganpipe.results import share
        from ganpipe.track import tracking

        return _printed(lambda: getattr(share, args.command)(tracking.project_root(), args.remote))
    if args.command == "reproduce":
        code, ok = run_guarded(lambda: reproduce(config.load(args.params), args))
        return code or (0 if ok else 1)
    if args.command == "compare":
        return _printed(lambda: compare(config.load(args.params), args))
    return _printed(lambda: evaluate(config.load(args.params), args))


def _team(args: argparse.Namespace) -> int:
    """`ganpipe team up|down|status DIR`; status exits 3 when a server is down."""
    from ganpipe.team import stack

    if args.action == "status":
        code, state = run_guarded(lambda: stack.status(args.dir))
        if code == 0:
            print("\n".join([f"{name}: {'up' if ok else 'DOWN'}" for name, ok in state["servers"].items()]
                            + [f"MLflow {state['tracking_uri']}, S3 {state['s3_endpoint']}, data {state['root']}"]))
            code = 0 if state["running"] else 3
        return code
    return _printed(lambda: stack.up(args.dir, args.host, args.port) if args.action == "up" else stack.down(args.dir))


def import_runs(args: argparse.Namespace) -> str:
    """`ganpipe import-runs`: the local store's runs onto the server ($MLFLOW_TRACKING_URI)."""
    import os

    from ganpipe.track import migrate, tracking

    target = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not target.startswith(("http://", "https://")):
        raise TrackingError("import-runs copies into the MLflow server named by MLFLOW_TRACKING_URI (with "
                            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD); set them as `ganpipe team up` "
                            f"prints (it is {target or 'unset'})")
    source = args.source or f"sqlite:///{tracking.project_root() / 'mlflow.db'}"
    if source.startswith("sqlite:///") and not Path(source.removeprefix("sqlite:///")).is_file():
        raise TrackingError(f"no local MLflow store {source}; run the command in the project folder that holds "
                            f"mlflow.db, or give --from")
    tracking.connect_uri(target)
    return migrate.migrate(source, target, args.experiment).line(source, target)


def _train_node(args: argparse.Namespace) -> int:
    """`ganpipe train-node`: this machine's processes of a multi-machine training (same commit, params, data)."""
    from ganpipe.pipeline import train

    def join() -> None:
        cfg = config.load(args.params)
        if cfg.train.nodes < 2 or args.node_rank < 1:
            raise ConfigError(f"train-node joins a training over several machines as node 1 or more: needs "
                              f"train.nodes > 1 (it is {cfg.train.nodes}) and --node-rank >= 1 (got {args.node_rank})")
        train.run(cfg, node_rank=args.node_rank)

    code, _ = run_guarded(join)
    return code


def evaluate(cfg: config.Config, args: argparse.Namespace) -> str:
    """`ganpipe evaluate --samples`: the score table, and where the JSON (and the MLflow run) went."""
    from ganpipe.pipeline.external import evaluate_samples

    result = evaluate_samples(cfg, args.samples, args.out, args.mlflow, args.value_range, args.features)
    return score_table(result) + f"\nwrote {result['json']}" + (
        f"\n{result['mlflow_note']}" if "mlflow_note" in result else "")


def compare(cfg: config.Config, args: argparse.Namespace) -> str:
    """`ganpipe compare`: the comparison table (Markdown or CSV) and, with --plot, a PNG."""
    import dataclasses

    from ganpipe.results import report
    from ganpipe.track import tracking

    tags = dict(t.partition("=")[::2] for t in args.tag)
    if any(not k or not v for k, v in tags.items()):
        raise ConfigError(f"--tag must look like KEY=VALUE, got {args.tag}")
    tracking_cfg = dataclasses.replace(cfg.tracking, enabled=True, experiment=args.experiment or cfg.tracking.experiment)
    runs = tracking.select_runs(tracking_cfg, tags, args.runs)
    if runs.empty:
        raise TrackingError(f"no runs in experiment {tracking_cfg.experiment!r} match tags {tags}")
    try:
        table = report.comparison(runs, args.sort, ascending=not args.descending)
    except KeyError as exc:
        raise ConfigError(f"--sort: {exc.args[0]}") from None
    text = table.to_csv(index=False) if args.format == "csv" else table.to_markdown(index=False, floatfmt=".4g")
    if args.plot:
        metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
        unknown = [m for m in metrics if m not in table.columns]
        if unknown:
            raise ConfigError(f"--metrics: no column {unknown[0]!r}; columns: {list(table.columns)}")
        curves = {name: {key: tracking.metric_history(run_id, key) for key in ("loss/d", "loss/g")}
                  for name, run_id in zip(runs["tags.mlflow.runName"], runs["run_id"])}
        report.plot_comparison(table, metrics, curves, args.plot)
    if args.out:
        from ganpipe.files import write_text

        write_text(args.out, text + "\n")
        return f"wrote {args.out}" + (f" and {args.plot}" if args.plot else "")
    return text + (f"\nwrote {args.plot}" if args.plot else "")


def reproduce(cfg: config.Config, args: argparse.Namespace) -> bool:
    """`ganpipe reproduce`: prints the verdict table; True when the target reproduced."""
    import dataclasses

    from ganpipe.results import reproduce as rep
    from ganpipe.results import verdict
    from ganpipe.track import tracking

    if args.tolerance is not None and not 0 <= args.tolerance < 1:
        raise ConfigError(f"--tolerance must be in [0, 1), got {args.tolerance}")
    root = tracking.project_root()
    tracking_cfg = dataclasses.replace(cfg.tracking, enabled=True)
    target = rep.resolve(args.target, root, tracking_cfg)
    checks, mode = rep.reproduce(root, target, args.tolerance, args.keep)
    text, ok = verdict.verdict_table(checks, f"{target.label} at commit {target.commit[:12]}", mode)
    print(text)
    if args.out:
        from ganpipe.files import write_json

        write_json(args.out, {"target": target.label, "commit": target.commit, "expected": mode,
                              "reproduced": ok, "checks": [dataclasses.asdict(c) for c in checks]})
    return ok


if __name__ == "__main__":
    sys.exit(main())
