"""What each `ganpipe` verb does, given its parsed arguments; each returns its report as text (or a verdict) and
raises ganpipe.errors.UserError for anything the user can fix."""
from __future__ import annotations

import argparse
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
        lines += [f"{'classifier space':<22}{'samples':>12}{'real ceiling':>14}",
                  *_rows(result, scores.CLASSIFIER_TABLE),
                  f"protocol: {p['n_fake']} samples vs {p['n_holdout']} held-out images; features "
                  f"{p['feature_dim']}-d from classifier {p['classifier_sha256'][:12]}"]
    if "inception" in result:
        space, p = result["inception"], result["inception"]["protocol"]
        lines += [f"{'Inception-V3 space':<22}{'samples':>12}{'real ceiling':>14}",
                  *_rows(space, scores.INCEPTION_TABLE),
                  f"protocol: {p['n_fake']} samples (ceiling: {p['n_holdout']} held-out images) vs the "
                  f"{p['n_train']} training images; FID depends on n: compare only equal n"]
    return "\n".join(lines)


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
    tracking_cfg = dataclasses.replace(cfg.tracking, enabled=True,
                                       experiment=args.experiment or cfg.tracking.experiment)
    runs = tracking.select_runs(tracking_cfg, tags, args.runs)
    if runs.empty:
        raise TrackingError(f"no runs in experiment {tracking_cfg.experiment!r} match tags {tags}")
    if args.group_by:
        return _grouped(runs, args)
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
    return _written(text, args)


def _grouped(runs, args: argparse.Namespace) -> str:
    """`ganpipe compare --group-by`: mean ± std per group, as Markdown or CSV, and with --plot error bars."""
    from ganpipe.results import groups

    summary, names = groups.summarize(runs, args.group_by)
    sort = f"{args.sort}_mean"
    if sort not in summary.columns:
        raise ConfigError(f"--sort: no score {args.sort!r} in these runs; scores: {names}")
    summary = summary.sort_values(sort, ascending=not args.descending, na_position="last").reset_index(drop=True)
    text = summary.to_csv(index=False) if args.format == "csv" else groups.markdown(summary, names, args.group_by)
    if args.plot:
        metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
        unknown = [m for m in metrics if m not in names]
        if unknown:
            raise ConfigError(f"--metrics: no score {unknown[0]!r} in these runs; scores: {names}")
        groups.plot(summary, metrics, args.group_by, args.plot)
    return _written(text, args)


def _written(text: str, args: argparse.Namespace) -> str:
    """The table printed, or written to --out; and where the plot went."""
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


def generate(tracking: config.TrackingConfig, args: argparse.Namespace) -> str:
    """`ganpipe generate`: images from a generator file or a training run."""
    from ganpipe.pipeline.generate import Request, run

    classes = None
    if args.classes:
        try:
            classes = tuple(int(c) for c in args.classes.split(",") if c.strip())
        except ValueError:
            raise ConfigError(f"--classes must be comma-separated class indices (e.g. 3,5), got {args.classes!r}") \
                from None
    req = Request(args.source, args.n, args.out, args.seed, classes, args.truncation, args.interpolate,
                  args.batch_size)
    return run(req, tracking)


def score(args: argparse.Namespace, tracking: config.TrackingConfig) -> str:
    """`ganpipe score`: the project's evaluate options when run in one, params.yaml's defaults outside."""
    from ganpipe.pipeline import score as scoring

    in_project = Path(args.params).is_file()
    options = config.load(args.params).evaluate if in_project else scoring.default_evaluate()
    req = scoring.Request(args.real, args.fake, args.n, args.json, args.batch_size or options.inception_batch,
                          args.value_range, args.seed)
    result = scoring.run(req, options, tracking)
    return scoring.table(result) + (f"\nwrote {args.json}" if args.json else "")


def report(args: argparse.Namespace, tracking_cfg: config.TrackingConfig) -> str:
    """`ganpipe report`: the page for a run or a config's runs, written atomically."""
    import dataclasses

    from ganpipe.files import write_text
    from ganpipe.results import html
    from ganpipe.track import reportdata, tracking

    if args.grids < 1:
        raise ConfigError(f"--grids must be at least 1, got {args.grids}")
    cfg = dataclasses.replace(tracking_cfg, enabled=True)
    tracking.connect(cfg)  # a store that is down fails here, in seconds
    title, runs = reportdata.runs_for(cfg, args.target)
    reports = [reportdata.collect(cfg, run, args.grids) for run in runs]
    out = args.out or Path(f"report-{''.join(c if c.isalnum() or c in '-_.' else '_' for c in args.target)}.html")
    write_text(out, html.page(title, reports))
    return f"wrote {out} ({title}; open it in a browser: it needs nothing else)"


def tune(args: argparse.Namespace) -> str:
    """`ganpipe tune`: run a study (every check first), or --show one."""
    import os

    from ganpipe.errors import ConfigError
    from ganpipe.track.store import project_root
    from ganpipe.tune import link, storage, study

    root = project_root()
    url = args.storage or os.environ.get(link.STORAGE_ENV) or storage.default_url(root)
    if args.show:
        from ganpipe.tune import show

        return show.show(args.show, url, args.plot)
    if args.space is None or args.trials is None:
        raise ConfigError("ganpipe tune needs --space SPACE.yaml and --trials N (or --show STUDY)")
    gpus = study.parse_gpus(args.gpus)
    workers = len(gpus) if gpus and args.workers == 1 else args.workers
    opts = study.Options(args.configs, args.sets, args.space, args.trials, workers, args.study, url, args.prune,
                         args.prune_startup, gpus, args.heartbeat)
    return study.run(root, opts)
