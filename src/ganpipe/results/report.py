"""Tables of runs for people: pure functions from mlflow.search_runs' DataFrame to Markdown."""
from __future__ import annotations

import math

import pandas as pd

from ganpipe.keys import EVALUATES_TAG, PRECISION_TAG, SCORE_PREFIXES
from ganpipe.results import scores

# The results table's columns: registered scores by key (label and format from the registry), and two columns
# that are not scores, as (heading, run column, format)
COLUMNS: list[str | tuple[str, str, str]] = [
    "is", ("IS / ceiling", "is_share", "{:.0%}"), "fid", "classes_covered", "kl_uniform", "class_agreement",
    ("train s", "metrics.time/train_s", "{:.0f}")]


def _columns() -> list[tuple[str, str, str]]:
    return [c if isinstance(c, tuple) else (scores.BY_KEY[c].label, f"metrics.eval/{c}", scores.BY_KEY[c].fmt)
            for c in COLUMNS]


def latest_per_name(runs: pd.DataFrame, names: list[str], name_column: str = "tags.dvc.exp_name") -> pd.DataFrame:
    """The newest finished run with eval scores for each name, in the order of `names` (missing names dropped)."""
    if runs.empty or name_column not in runs:
        return runs.iloc[0:0]
    done = runs[(runs["status"] == "FINISHED") & runs.get("metrics.eval/is", pd.Series(dtype=float)).notna()]
    done = done.sort_values("start_time", ascending=False).drop_duplicates(name_column)
    rows = [done[done[name_column] == n] for n in names]
    return pd.concat([r for r in rows if not r.empty]) if any(not r.empty for r in rows) else runs.iloc[0:0]


def _cell(value: object, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return fmt.format(value)


def results_markdown(runs: pd.DataFrame, describe: dict[str, str], name_column: str = "tags.dvc.exp_name") -> str:
    """One row per run: name, what it is, every score; IS also as a share of the run's real-data IS ceiling."""
    runs = runs.copy()
    runs["is_share"] = runs["metrics.eval/is"] / runs["metrics.eval_real/is"]
    columns = _columns()
    head = ["run", "what"] + [h for h, _, _ in columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, row in runs.iterrows():
        name = row[name_column]
        cells = [f"`{name}`", describe.get(name, "")]
        cells += [_cell(row.get(col), fmt) for _, col, fmt in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def best_by(runs: pd.DataFrame, column: str, name_column: str = "tags.dvc.exp_name") -> str:
    """The name of the run with the lowest value of `column` (e.g. the lowest FID)."""
    return str(runs.loc[runs[column].idxmin(), name_column])


def replace_between(text: str, begin: str, end: str, block: str) -> str:
    """`text` with everything between the marker lines `begin` and `end` replaced by `block`."""
    start, stop = text.index(begin) + len(begin), text.index(end)
    return text[:start] + "\n" + block + text[stop:]


def differing_params(runs: pd.DataFrame) -> list[str]:
    """The params.* columns whose value is not the same in every run (what the runs actually vary)."""
    cols = [c for c in runs.columns if c.startswith("params.")]
    return sorted(c for c in cols if runs[c].astype(str).nunique(dropna=False) > 1)


def comparison(runs: pd.DataFrame, sort_by: str, ascending: bool) -> pd.DataFrame:
    """One row per run: its name, short id, its study and trial (`ganpipe tune`), the params that differ, every
    eval score and the best score during training; sorted by `sort_by`."""
    scores = sorted(c for c in runs.columns if c.startswith(tuple(f"metrics.{p}" for p in SCORE_PREFIXES)))
    table = runs[["tags.mlflow.runName", "run_id"]].copy()
    table["run_id"] = table["run_id"].str[:8]
    table.columns = ["run", "id"]
    link = f"tags.{EVALUATES_TAG}"
    if link in runs and runs[link].notna().any():  # an evaluation run names the training run it scored
        table["evaluates"] = runs[link].fillna("").str[:8]
    resolved = f"tags.{PRECISION_TAG}"
    if resolved in runs and runs[resolved].notna().any():  # what train.precision (auto) resolved to on its machine
        table["precision"] = runs[resolved].fillna("")
    if "tags.tune.study" in runs and runs["tags.tune.study"].notna().any():  # a `ganpipe tune` trial: study#N
        trial = runs["tags.tune.study"].fillna("") + "#" + runs.get("tags.tune.trial", pd.Series("", runs.index))
        table["trial"] = trial.where(runs["tags.tune.study"].notna(), "")
        table["tune.state"] = runs.get("tags.tune.state", pd.Series(None, runs.index)).fillna("")
    scores += [c for c in ("metrics.score/best",) if c in runs]  # the best score during training
    table = pd.concat([table, runs[[*differing_params(runs), *scores]]], axis=1)
    table.columns = [c.removeprefix("params.").removeprefix("metrics.") for c in table.columns]
    if sort_by not in table.columns:
        raise KeyError(f"cannot sort by {sort_by!r}; columns: {list(table.columns)}")
    return table.sort_values(sort_by, ascending=ascending, na_position="last").reset_index(drop=True)


def plot_comparison(table: pd.DataFrame, metrics: list[str], curves: dict[str, dict[str, list]],
                    path) -> None:
    """A PNG: one bar chart per chosen metric across runs, then the loss curves of every run overlaid."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    keys = sorted({k for per_run in curves.values() for k in per_run})
    panels = len(metrics) + len(keys)
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        ax.barh(table["run"].astype(str), table[metric].astype(float))
        ax.set_title(metric)
        ax.invert_yaxis()
    for ax, key in zip(axes[0][len(metrics):], keys):
        for name, per_run in curves.items():
            if per_run.get(key):
                steps, values = zip(*per_run[key])
                ax.plot(steps, values, label=name)
        ax.set_title(key)
        ax.set_xlabel("epoch (tick with train.kimg)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})  # no version string: same data, same bytes
    plt.close(fig)
