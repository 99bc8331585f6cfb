"""The `ganpipe` command: run configs as DVC experiments, generate images, score two image sets, compare runs
and report them, evaluate samples made anywhere, reproduce a result, push and pull, team mode. The verbs and
their options are in parser.py, what each does in verbs.py (`run`: experiments.py).

User errors (ganpipe.errors.UserError) become one clear line on stderr and a non-zero exit, no traceback: the
message already says what to fix. The DVC stages have their own runner (ganpipe.pipeline.run_stage).
"""
from __future__ import annotations

from pathlib import Path

from ganpipe.cli.parser import build_parser
from ganpipe.cli.verbs import (
    _printed,
    _team,
    _train_node,
    compare,
    evaluate,
    generate,
    import_runs,
    report,
    reproduce,
    score,
    tune,
)
from ganpipe.errors import run_guarded
from ganpipe.params import config


def _tracking(path: str) -> config.TrackingConfig:
    """The project's tracking params; outside a project (no params file: `generate` from a generator file or
    from the store in MLFLOW_TRACKING_URI) the defaults of params.yaml."""
    if not Path(path).is_file() and path == "params.yaml":
        return config.TrackingConfig(enabled=True, experiment="ganpipe")
    return config.load(path).tracking


def _run(args) -> int:
    """`ganpipe run`: check every command first (nothing starts on a bad config), then run them in turn."""
    from ganpipe.cli import experiments
    from ganpipe.track.store import project_root

    root = project_root()

    def planned() -> list:
        return experiments.plan(root, args.configs, args.sets, args.name, experiments.parse_seeds(args.seeds),
                                args.queue, args.temp)

    code, commands = run_guarded(planned)
    if code:
        return code
    if args.dry_run:
        return _printed(lambda: experiments.dry_run(root, commands))
    return experiments.execute(root, commands, args.queue)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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
    if args.command == "run":
        return _run(args)
    if args.command == "tune":
        return _printed(lambda: tune(args))
    if args.command == "score":
        return _printed(lambda: score(args, _tracking(args.params)))
    if args.command == "report":
        return _printed(lambda: report(args, _tracking(args.params)))
    if args.command == "generate":
        return _printed(lambda: generate(_tracking(args.params), args))
    if args.command == "compare":
        return _printed(lambda: compare(config.load(args.params), args))
    return _printed(lambda: evaluate(config.load(args.params), args))
