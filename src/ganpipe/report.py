"""Tables of runs for people: pure functions from mlflow.search_runs' DataFrame to Markdown."""
from __future__ import annotations

import math

import pandas as pd

# (column heading, run column, number format); "%" marks a share of the real-data ceiling
SCORES = [
    ("IS", "metrics.eval/is", "{:.2f}"),
    ("IS / ceiling", "is_share", "{:.0%}"),
    ("FID", "metrics.eval/fid", "{:.1f}"),
    ("classes", "metrics.eval/classes_covered", "{:.0f}"),
    ("KL(hist ‖ uniform)", "metrics.eval/kl_uniform", "{:.3f}"),
    ("class agreement", "metrics.eval/class_agreement", "{:.1%}"),
    ("train s", "metrics.time/train_s", "{:.0f}"),
]


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
    head = ["run", "what"] + [h for h, _, _ in SCORES]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, row in runs.iterrows():
        name = row[name_column]
        cells = [f"`{name}`", describe.get(name, "")]
        cells += [_cell(row.get(col), fmt) for _, col, fmt in SCORES]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def best_by(runs: pd.DataFrame, column: str, name_column: str = "tags.dvc.exp_name") -> str:
    """The name of the run with the lowest value of `column` (e.g. the lowest FID)."""
    return str(runs.loc[runs[column].idxmin(), name_column])


def replace_between(text: str, begin: str, end: str, block: str) -> str:
    """`text` with everything between the marker lines `begin` and `end` replaced by `block`."""
    start, stop = text.index(begin) + len(begin), text.index(end)
    return text[:start] + "\n" + block + text[stop:]
