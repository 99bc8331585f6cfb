"""`ganpipe report`'s page: one self-contained HTML file (pictures inlined as data: URIs, no scripts, nothing
fetched) per run or per config's runs. Pure: from track/reportdata.py's RunReport values to text."""
from __future__ import annotations

import base64
import html
import io
import math
import statistics

from ganpipe.keys import CONFIG_TAG, DATA_TAG, GENERATOR_TAG, INCEPTION_PREFIX, MODEL_URI_TAG, PRECISION_TAG
from ganpipe.results import scores
from ganpipe.results.groups import mean_std

PROVENANCE = ("git.commit", "git.dirty", "dvc.exp_name", "dvc.exp_baseline", "dvc.params_changed", CONFIG_TAG,
              "data.name", DATA_TAG, "data.image_shape", GENERATOR_TAG, MODEL_URI_TAG, PRECISION_TAG,
              "train.device", "env.cpu", "env.cpu_isa", "env.gpu", "env.gpu_uuid", "env.torch", "env.bf16",
              "tune.study", "tune.trial", "tune.state")
STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}figure{display:inline-block;margin:0 .5em .5em 0}
figcaption{text-align:center;font-size:.85em;color:#555}img{image-rendering:pixelated}
section{border-top:2px solid #888;margin-top:2em}code{background:#f3f3f3;padding:0 .2em}"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _png(data: bytes, alt: str, width: int | None = None) -> str:
    size = f' width="{width}"' if width else ""
    return f'<img alt="{_e(alt)}"{size} src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def _table(head: list[str], rows: list[list[str]], numeric_from: int = 1) -> str:
    out = ["<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"]
    for row in rows:
        cells = [f'<td{" class=n" if i >= numeric_from else ""}>{c}</td>' for i, c in enumerate(row)]
        out.append("<tr>" + "".join(cells) + "</tr>")
    return "".join(out) + "</table>"


def score_keys(found: dict[str, float]) -> list[str]:
    """The registered score keys (fid, inception_fid, ...) the run has, classifier space first, registry order."""
    keys = [s.key for s in scores.SCORES] + [INCEPTION_PREFIX + s.key for s in scores.SCORES]
    return [k for k in keys if f"eval/{k}" in found]


def _label(key: str) -> str:
    score = scores.lookup(key)
    name = score.label if score else key
    return f"{name} (Inception)" if key.startswith(INCEPTION_PREFIX) else name


def scores_table(found: dict[str, float]) -> str:
    rows = [[_e(_label(k)), _e(scores.shown(k, found[f"eval/{k}"])), _e(scores.shown(k, found.get(f"eval_real/{k}")))]
            for k in score_keys(found)]
    return _table(["score", "samples", "real-data ceiling"], rows) if rows else "<p>No scores logged yet.</p>"


def curves_png(curves: dict[str, list[tuple[int, float]]]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    for ax, keys in zip(axes, (("loss/d", "loss/g"), ("d/real", "d/fake"))):
        for key in keys:
            if curves.get(key):
                steps, values = zip(*curves[key])
                ax.plot(steps, values, label=key)
        ax.set_xlabel("epoch (tick with train.kimg)")
        if ax.lines:
            ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def run_section(report) -> str:
    run = report.run
    parts = [f"<section><h2>{_e(run.name)}</h2><p>MLflow run <code>{_e(run.run_id)}</code>, {_e(run.status)}; "
             f"config <code>{_e(run.tags.get(CONFIG_TAG, 'params.yaml'))}</code>, commit "
             f"<code>{_e(run.tags.get('git.commit', 'unknown')[:12])}</code></p>",
             "<h3>Scores</h3>", scores_table(report.scores), "<h3>Samples over training</h3>"]
    unit = "epoch" if run.params.get("train.kimg", "None") == "None" else "tick"  # MLflow steps count ticks
    parts += [f"<figure>{_png(png, f'samples at {unit} {step}', 256)}<figcaption>{unit} {step}</figcaption></figure>"
              for step, png in report.grids] or ["<p>No sample grids were logged.</p>"]
    parts += ["<h3>Losses</h3>", _png(curves_png(report.curves), "loss curves") if report.curves
              else "<p>No losses were logged.</p>", "<h3>Closest pairs (copy detection)</h3>"]
    parts.append(f"<p>The samples nearest to a training image (top row), above that image.</p>"
                 f"{_png(report.pairs, 'closest pairs', 512)}" if report.pairs else
                 "<p>Copy detection did not run for this run.</p>")
    provenance = [[_e(k), f"<code>{_e(run.tags[k])}</code>"] for k in PROVENANCE if k in run.tags]
    parts += ["<h3>Provenance</h3>", _table(["tag", "value"], provenance, 9), "<h3>Params</h3>",
              _table(["param", "value"], [[_e(k), _e(v)] for k, v in sorted(run.params.items())], 9), "</section>"]
    return "\n".join(parts)


def group_table(reports: list) -> str:
    """mean ± std (n) of every score over the runs (sample std, n - 1)."""
    rows = []
    for key in score_keys({k: v for r in reports for k, v in r.scores.items()}):
        values = [r.scores[f"eval/{key}"] for r in reports if f"eval/{key}" in r.scores]
        std = statistics.stdev(values) if len(values) > 1 else math.nan
        rows.append([_e(_label(key)), _e(mean_std(key, statistics.fmean(values), std)), str(len(values))])
    return _table(["score", "mean ± std", "n"], rows)


def page(title: str, reports: list) -> str:
    body = [f"<h1>ganpipe report: {_e(title)}</h1>"]
    if len(reports) > 1:
        body += ["<h2>Over the runs</h2>", group_table(reports),
                 "<p>Runs: " + ", ".join(f"<code>{_e(r.run.name)}</code>" for r in reports) + "</p>"]
    body += [run_section(r) for r in reports]
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{_e(title)}</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
