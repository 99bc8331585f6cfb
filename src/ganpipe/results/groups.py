"""Runs grouped (by config, or by any param or tag) and summarised as mean +- std over the group, the way GAN
results are reported over seeds (Lucic et al. 2018). Pure functions of mlflow.search_runs' DataFrame."""
from __future__ import annotations

import math

import pandas as pd

from ganpipe.errors import ConfigError
from ganpipe.keys import CONFIG_TAG, SCORE_PREFIXES
from ganpipe.results import scores

NONE = "(none)"  # the group of runs that do not have the grouping value (e.g. runs from before the tag)


def group_column(runs: pd.DataFrame, by: str) -> str:
    """The DataFrame column `--group-by` names: 'config' (the ganpipe.config tag), a param such as
    'train.loss', or a tag as 'tags.KEY'."""
    column = f"tags.{CONFIG_TAG}" if by == "config" else by if by.startswith("tags.") else f"params.{by}"
    if column not in runs.columns:
        params = sorted(c.removeprefix("params.") for c in runs.columns if c.startswith("params."))
        raise ConfigError(f"--group-by {by!r}: no such param or tag in these runs; use config, tags.KEY, or a "
                          f"param such as {', '.join(params[:6]) or 'train.loss'}")
    return column


def summarize(runs: pd.DataFrame, by: str) -> tuple[pd.DataFrame, list[str]]:
    """One row per group: the group's value, n (runs with scores), and <score>_mean / <score>_std for every
    score (std over runs, ddof=1; empty for n=1). A run re-made under the same name counts once: its newest.
    Also the score names, in order."""
    column = group_column(runs, by)
    names = sorted(c.removeprefix("metrics.") for c in runs.columns
                   if c.startswith(tuple(f"metrics.{p}" for p in SCORE_PREFIXES)))
    if not names:
        raise ConfigError("no run here has eval scores yet; finish a pipeline run (or `ganpipe evaluate`) first")
    scored = runs[runs[[f"metrics.{n}" for n in names]].notna().any(axis=1)]
    scored = scored.sort_values("start_time", ascending=False).drop_duplicates("tags.mlflow.runName")
    rows = []
    for value, group in scored.groupby(scored[column].fillna(NONE).astype(str), sort=True):
        row: dict = {"group": value, "n": len(group)}
        for name in names:
            values = group[f"metrics.{name}"].dropna().astype(float)
            row[f"{name}_mean"] = values.mean() if len(values) else math.nan
            row[f"{name}_std"] = values.std(ddof=1) if len(values) > 1 else math.nan
        rows.append(row)
    return pd.DataFrame(rows), names


def mean_std(name: str, mean: float, std: float) -> str:
    """'12.0 ± 2.0' in the score's format; the mean alone when std is NaN (one run), '–' when there is none."""
    if math.isnan(mean):
        return "–"
    return scores.shown(name, mean) + ("" if math.isnan(std) else " ± " + scores.shown(name, std))


def markdown(summary: pd.DataFrame, names: list[str], by: str) -> str:
    """The summary as a Markdown table: one row per group, 'mean ± std' per score."""
    head = [by, "n", *names]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, row in summary.iterrows():
        cells = [f"`{row['group']}`", str(int(row["n"]))]
        cells += [mean_std(name, row[f"{name}_mean"], row[f"{name}_std"]) for name in names]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(summary: pd.DataFrame, metrics: list[str], by: str, path) -> None:
    """A PNG: one bar chart per metric, a bar per group at its mean with a +-std error bar, labelled with n."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(4.4 * len(metrics), 0.6 * len(summary) + 1.6),
                             squeeze=False)
    labels = [f"{g} (n={n})" for g, n in zip(summary["group"], summary["n"])]
    for ax, metric in zip(axes[0], metrics):
        ax.barh(labels, summary[f"{metric}_mean"], xerr=summary[f"{metric}_std"].fillna(0), capsize=4)
        ax.set_title(f"{metric} (mean ± std)")
        ax.invert_yaxis()
    fig.suptitle(f"grouped by {by}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})  # no version string: same data, same bytes
    plt.close(fig)
