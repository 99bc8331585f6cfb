"""`ganpipe tune --show STUDY`: the best trials, the params' importances, the history (a table and a PNG) and
the command that reproduces the best trial. Tables are pure functions of the study's trials."""
from __future__ import annotations

from pathlib import Path

from ganpipe.errors import TuneError
from ganpipe.tune import storage

STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")


def _values(trial) -> str:
    return ", ".join(f"{v:.4g}" for v in trial.values) if trial.values else ""


def _param(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def history_table(trials: list, metrics: list[str], minimise: bool = True) -> str:
    """Every trial in order: state, objective values, params, experiment and MLflow run, and for the first
    objective the best so far."""
    keys = sorted({k for t in trials for k in t.params})
    head = ["trial", "state", *metrics, "best so far", *keys, "experiment", "mlflow run"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    best = None
    for t in trials:
        if t.values and t.state.name == "COMPLETE":
            v = t.values[0]
            best = v if best is None or (v < best if minimise else v > best) else best
        values = [f"{v:.4g}" for v in t.values] if t.values and t.state.name == "COMPLETE" else [""] * len(metrics)
        retried = t.system_attrs.get("retry_history")
        state = t.state.name.lower() + (f" (retry of {retried[-1]})" if retried else "")
        row = [str(t.number), state, *values, "" if best is None else f"{best:.4g}",
               *(_param(t.params[k]) if k in t.params else "" for k in keys),
               t.user_attrs.get("ganpipe.experiment", ""), t.user_attrs.get("ganpipe.mlflow_run", "")]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def counts(trials: list) -> str:
    have = [t.state.name for t in trials]
    return ", ".join(f"{have.count(s)} {s.lower()}" for s in STATES if s in have) or "no trials"


def importances(study) -> dict[str, float]:
    """Each param's share of the first objective's variance (Optuna's fANOVA); {} below 2 complete trials
    or with one param value only."""
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 2:
        return {}
    try:
        return optuna.importance.get_param_importances(study, target=lambda t: t.values[0])
    except (RuntimeError, ValueError):  # one distinct value of every param: nothing to apportion
        return {}


def reproduce_line(trial) -> str:
    run_id = trial.user_attrs.get("ganpipe.mlflow_run")
    name = trial.user_attrs.get("ganpipe.experiment")
    if run_id:
        return f"ganpipe reproduce {run_id}   # trial {trial.number}, DVC experiment {name} (in the clone that ran it)"
    return f"ganpipe reproduce {name}"


def best_trials(study) -> list:
    try:
        return study.best_trials
    except ValueError:
        return []


def summary(study) -> str:
    """What a finished `ganpipe tune` prints: the counts, the best trial(s) and how to reproduce them."""
    trials = study.get_trials(deepcopy=False)
    metrics = [m for m, _ in study.user_attrs.get("ganpipe.defines", {}).get("objectives", [])]
    lines = [f"study {study.study_name}: {counts(trials)}"]
    for trial in best_trials(study)[:5]:
        shown = ", ".join(f"{m}={v:.4g}" for m, v in zip(metrics, trial.values))
        params = ", ".join(f"{k}={_param(v)}" for k, v in trial.params.items())
        lines += [f"best: trial {trial.number}: {shown} ({params})", f"  {reproduce_line(trial)}"]
    lines.append(f"more: ganpipe tune --show {study.study_name}")
    return "\n".join(lines)


def show(name: str, url: str, plot: Path | None) -> str:
    """The --show page: summary, importances, the history table; the history PNG written to `plot`."""
    import optuna

    store = storage.open_storage(url)
    try:
        study = optuna.load_study(study_name=name, storage=store)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(store, include_best_trial=False)]
        raise TuneError(f"no study {name!r} in {storage.redact(url)}; it holds: {', '.join(names) or 'none'} "
                        f"(another storage: --storage URL or GANPIPE_TUNE_STORAGE)") from None
    trials = study.get_trials(deepcopy=False)
    metrics = [m for m, _ in study.user_attrs.get("ganpipe.defines", {}).get("objectives", [])] or ["value"]
    parts = [summary(study).rsplit("\n", 1)[0], ""]
    found = importances(study)
    if found:
        parts += [f"param importances ({metrics[0]}, fANOVA):",
                  *(f"  {k}: {v:.2f}" for k, v in found.items()), ""]
    minimise = study.directions[0] == optuna.study.StudyDirection.MINIMIZE
    parts += ["history:", history_table(trials, metrics, minimise)]
    if plot is not None:
        parts.append(f"\nhistory plot: {write_plot(study, plot, metrics[0])}")
    return "\n".join(parts)


def write_plot(study, path: Path, metric: str) -> Path:
    """Optuna's optimisation history of the first objective (matplotlib), as a PNG."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization.matplotlib import plot_optimization_history

    with warnings.catch_warnings():  # Optuna marks its matplotlib plots experimental
        warnings.simplefilter("ignore")
        ax = plot_optimization_history(study, target=lambda t: t.values[0], target_name=metric)
    path.parent.mkdir(parents=True, exist_ok=True)
    ax.figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(ax.figure)
    return path
