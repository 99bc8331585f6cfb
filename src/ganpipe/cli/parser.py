"""The `ganpipe` command line: every verb, its options and its examples (`ganpipe VERB --help`)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ganpipe.params import config


def version() -> str:
    """`ganpipe --version`: this package's version and the versions that decide its numbers."""
    import platform
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    def of(name: str) -> str:
        try:
            return installed(name)
        except PackageNotFoundError:
            return "not installed"

    return (f"ganpipe {of('ganpipe')} (python {platform.python_version()}, torch {of('torch')}, "
            f"mlflow {of('mlflow')}, dvc {of('dvc')})")


def build_parser() -> argparse.ArgumentParser:
    from ganpipe.data.ranges import RANGES

    parser = argparse.ArgumentParser(prog="ganpipe", description="ganpipe: reproducible GAN experiments",
                                     epilog="`ganpipe VERB --help` shows each verb's options and examples.")
    parser.add_argument("--version", action="version", version=version())
    # --params is accepted before or after the verb; after it, it wins (SUPPRESS: absent there leaves the first)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--params", default=argparse.SUPPRESS, help="params file (default: params.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)

    def verb(name: str, help_text: str, *examples: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text, parents=[common],
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog="examples:\n" + "\n".join(f"  {e}" for e in examples))

    ev = verb("evaluate", "score images made anywhere with this project's protocol",
              "ganpipe evaluate --samples my_gan.npz",
              "ganpipe evaluate --samples pngs/ --features inception --mlflow other-gan",
              "ganpipe evaluate --samples unit.npy --value-range 0,1")
    ev.add_argument("--samples", required=True, type=Path,
                    help=".npz, .npy, .pt, .safetensors or a folder of PNGs; uint8, or floats with a known range")
    ev.add_argument("--value-range", choices=list(RANGES),
                    help="what float pixels mean (black,white): needed unless the file says it or holds negatives")
    ev.add_argument("--out", type=Path, help="JSON file to write (default: <samples>.eval.json)")
    ev.add_argument("--features", choices=list(config.FEATURES),
                    help="feature space(s) to score in (default: evaluate.features of the params); inception is the "
                         "standard space of published FIDs and needs no labels or classifier")
    ev.add_argument("--mlflow", metavar="RUN_NAME", help="also log the scores as an MLflow run of this name")
    cmp = verb("compare", "compare MLflow runs: differing params and eval scores, and a plot", "ganpipe compare",
               "ganpipe compare --sort eval/is --descending --format csv --out sweep.csv",
               "ganpipe compare --runs RUN_ID RUN_ID --plot cmp.png --metrics eval/is,eval/fid",
               "ganpipe compare --group-by config --plot seeds.png   # mean ± std over each config's seeds")
    cmp.add_argument("--experiment", help="MLflow experiment (default: tracking.experiment of params.yaml)")
    cmp.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="only runs with this tag")
    cmp.add_argument("--runs", nargs="+", metavar="RUN_ID", help="only these runs")
    cmp.add_argument("--sort", default="eval/fid", help="column to sort by (default: eval/fid)")
    cmp.add_argument("--descending", action="store_true")
    cmp.add_argument("--format", choices=["md", "csv"], default="md")
    cmp.add_argument("--out", type=Path, help="write the table here instead of printing it")
    cmp.add_argument("--plot", type=Path, help="write a PNG: the --metrics across runs and the loss curves")
    cmp.add_argument("--metrics", default="eval/is,eval/fid", help="comma-separated metrics for --plot")
    cmp.add_argument("--group-by", metavar="KEY", help="one row per group, mean ± std (and n) of every score: config "
                                                       "(the configs a run applied), a param (train.loss) or tags.KEY")
    rep = verb("reproduce", "re-run a logged result from its commit in a git worktree and check it",
               "ganpipe reproduce 3f2a9c0d...   # an MLflow run id", "ganpipe reproduce 07e9f7e       # a git commit",
               "ganpipe reproduce bce-short --tolerance 0.05 --out verdict.json   # a DVC experiment")
    rep.add_argument("target", help="MLflow run id, git commit/ref, or DVC experiment name")
    rep.add_argument("--tolerance", type=float, metavar="R",
                     help="accept scores within relative R (e.g. 0.1) instead of expecting identical bytes; "
                          "default: identical on the same machine kind, 0.1 otherwise")
    rep.add_argument("--keep", action="store_true", help="keep the worktree (and its MLflow store) afterwards")
    rep.add_argument("--out", type=Path, help="also write the checks as JSON")
    for name, what in (("push", "send this commit's DVC outputs to a remote"),
                       ("pull", "fetch this commit's DVC outputs from a remote")):
        share_cmd = verb(name, f"{what} (dvc {name}, with clear errors)", f"ganpipe {name}",
                         f"ganpipe {name} --remote storage")
        share_cmd.add_argument("--remote", "-r", help="DVC remote name (default: the default remote)")
    node = verb("train-node", "join a training over several machines (train.nodes > 1) as node K; node 0 is the "
                              "machine running `dvc repro`", "ganpipe train-node --node-rank 1")
    node.add_argument("--node-rank", type=int, required=True, metavar="K", help="this machine's node rank, 1 or more")
    team = verb("team", "the team stack: MLflow server (PostgreSQL, S3 artifacts, logins) and an S3 bucket for "
                        "DVC, on a data folder", "ganpipe team up /srv/ganpipe-team --host 0.0.0.0",
                "ganpipe team status /srv/ganpipe-team", "ganpipe team down /srv/ganpipe-team")
    team.add_argument("action", choices=["up", "down", "status"])
    team.add_argument("dir", type=Path, help="the stack's data folder (created by `up`; kept by `down`)")
    team.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    team.add_argument("--port", type=int, help="first of its consecutive ports (default: as before, else 25400)")
    imp = verb("import-runs", "copy a local MLflow history (runs, metrics, images, tags, models) onto the server in "
                              "$MLFLOW_TRACKING_URI; safe to run again",
               "MLFLOW_TRACKING_URI=https://mlflow.example.org ganpipe import-runs")
    imp.add_argument("--from", dest="source", metavar="URI",
                     help="the store to copy from (default: this project's sqlite:///mlflow.db)")
    imp.add_argument("--experiment", action="append", metavar="NAME", help="only this experiment (repeatable)")
    _generate_verb(verb)
    _run_verb(verb)
    _score_verb(verb)
    _tune_verb(verb)
    rpt = verb("report", "one self-contained HTML page for a run, or for every run of a config: sample grids over "
                         "training, losses, scores against the real-data ceiling, closest pairs, params, provenance",
               "ganpipe report my-photos -o my-photos.html", "ganpipe report RUN_ID",
               "ganpipe report colour -o colour.html   # a config: mean ± std over its seeds, then each run")
    rpt.add_argument("target", help="an MLflow run id, a DVC experiment / run name, or a config name (its runs)")
    rpt.add_argument("-o", "--out", type=Path, help="the HTML file to write (default: report-TARGET.html)")
    rpt.add_argument("--grids", type=int, default=8, help="sample grids per run, spread over training (default 8)")
    return parser


def _score_verb(verb) -> None:
    from ganpipe.data.ranges import RANGES

    sc = verb("score", "score one image set against another in Inception-V3 space (FID, KID, precision/recall, "
                       "density/coverage, copies); works outside a ganpipe project, offline",
              "ganpipe score my_photos/ generated_pngs/",
              "ganpipe score real.npz fake.npz --n 5000 --json scores.json",
              "ganpipe score my_photos/ RUN_ID --n 10000   # a training run's generator draws the fake set")
    sc.add_argument("real", help="folder of images (any size and mode, searched recursively), array file, or run")
    sc.add_argument("fake", help="the same kinds: a folder, an .npz/.npy/.pt/.safetensors file, or a training "
                                 "run's id or experiment name")
    sc.add_argument("--features", choices=["inception"], default="inception",
                    help="the feature space (Inception-V3 pool3, the space of published FIDs)")
    sc.add_argument("--n", type=int, help="at most N images of each set (a fixed random subset); from a run: N "
                                          "images are drawn (default 10000)")
    sc.add_argument("--json", type=Path, metavar="OUT", help="also write the scores and protocol as JSON")
    sc.add_argument("--batch-size", type=int, help="images per Inception pass (default: evaluate.inception_batch)")
    sc.add_argument("--value-range", choices=list(RANGES), help="what float pixels of an array file mean")
    sc.add_argument("--seed", type=int, default=0, help="the noise seed a training run's generator draws from "
                                                        "(default 0: the images `ganpipe generate RUN` writes)")


def _tune_verb(verb) -> None:
    from ganpipe.tune.storage import PRUNERS

    tune = verb("tune", "search params with Optuna (TPE): each trial a DVC experiment of the config with sampled "
                        "params, tagged in MLflow; several workers, machines (a shared database) and GPUs",
                "ganpipe tune colour --space space.yaml --trials 20",
                "ganpipe tune colour --space space.yaml --trials 40 --workers 2 --gpus 0,1 --prune",
                "GANPIPE_TUNE_STORAGE=postgresql+psycopg://... ganpipe tune colour --space space.yaml --trials 40 "
                "--study lr-search   # in each clone, on each machine",
                "ganpipe tune --show lr-search --plot history.png")
    tune.add_argument("configs", nargs="*", metavar="CONFIG",
                      help="a name under configs/ (colour) or a YAML file, as for `ganpipe run`")
    tune.add_argument("--space", type=Path, help="SPACE.yaml: the params' ranges and the objectives "
                                                  "(docs/tuning.md)")
    tune.add_argument("--trials", type=int, help="finished (complete or pruned) trials the study should hold")
    tune.add_argument("-S", "--set-param", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                      help="a params.yaml value for every trial (after the configs)")
    tune.add_argument("--workers", type=int, default=1, help="trials run at once here (default 1)")
    tune.add_argument("--study", help="the study's name (default: CONFIG-SPACE); the same name joins it")
    tune.add_argument("--storage", help="the study's database URL (default: $GANPIPE_TUNE_STORAGE, else "
                                        "sqlite:///.ganpipe/tune.db in the project)")
    tune.add_argument("--prune", nargs="?", const="median", choices=list(PRUNERS),
                      help="stop trials whose scores during training fall behind (median, the default, or "
                           "successive halving)")
    tune.add_argument("--prune-startup", type=int, default=5, metavar="N",
                      help="the median pruner prunes only after N trials finished (default 5)")
    tune.add_argument("--gpus", metavar="0,1", help="pin worker i to GPU i (CUDA_VISIBLE_DEVICES); --workers "
                                                    "defaults to their number")
    tune.add_argument("--heartbeat", type=int, default=20, metavar="S",
                      help="a worker's heartbeat in seconds; a trial silent for 3 x S is failed and retried "
                           "(default 20)")
    tune.add_argument("--show", metavar="STUDY", help="show a study: best trials, importances, history")
    tune.add_argument("--plot", type=Path, help="with --show: write the optimisation history as a PNG")


def _run_verb(verb) -> None:
    run = verb("run", "run the pipeline as a DVC experiment: config overlays (configs/*.yaml) and -S values applied "
                      "in order, checked before anything starts, the MLflow run tagged with the config names",
               "ganpipe run colour -S data.root=/abs/path/to/images -n my-photos",
               "ganpipe run colour --seeds 0,1,2 -n colour --queue   # then: dvc queue start -j 2",
               "ganpipe run seed_recipe -S train.epochs=5 --dry-run   # print the params and the dvc command",
               "ganpipe run -S train.loss=bce,hinge --queue --temp")
    run.add_argument("configs", nargs="*", metavar="CONFIG",
                     help="a name under configs/ (colour) or a YAML file; later ones win")
    run.add_argument("-S", "--set-param", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                     help="a params.yaml value, as `dvc exp run -S` takes it (applied after the configs)")
    run.add_argument("-n", "--name", help="the DVC experiment's name (with --seeds: NAME-s0, NAME-s1, ...)")
    run.add_argument("--seeds", metavar="0,1,2", help="one experiment per train.seed (compare them with "
                                                      "`ganpipe compare --group-by config`)")
    run.add_argument("--queue", action="store_true", help="queue the experiments (`dvc queue start` runs them)")
    run.add_argument("--temp", action="store_true", help="run in a temporary copy; the workspace stays as it is")
    run.add_argument("--dry-run", action="store_true", help="print the resolved params and the dvc commands only")


def _generate_verb(verb) -> None:
    gen = verb("generate", "images from a trained generator: PNG files, an npz/safetensors array or a grid",
               "ganpipe generate models/generator.safetensors --n 1000 --out pngs/",
               "ganpipe generate RUN_ID --n 10000 --out samples.npz --seed 1",
               "ganpipe generate my-experiment --n 64 --out grid.png --classes 3,5 --truncation 0.7",
               "ganpipe generate RUN_ID --n 8 --interpolate 10 --out walk.png")
    gen.add_argument("source", help="a generator file (models/generator.safetensors), an MLflow run id, or a DVC "
                                    "experiment / run name (its newest finished training run)")
    gen.add_argument("--n", type=int, required=True, help="how many images (with --interpolate: how many rows)")
    gen.add_argument("--out", type=Path, required=True,
                     help="a folder (one PNG per image), FILE.npz or FILE.safetensors (images and labels), or "
                          "FILE.png (a grid)")
    gen.add_argument("--seed", type=int, default=0, help="the latents come from this seed alone (default 0)")
    gen.add_argument("--classes", help="comma-separated class indices, asked in turn (conditional generators)")
    gen.add_argument("--truncation", type=float, metavar="PSI",
                     help="BigGAN's truncation: latents beyond |PSI| are drawn again (e.g. 0.7)")
    gen.add_argument("--interpolate", type=int, metavar="STEPS",
                     help="a grid of --n latent walks of STEPS images each (slerp); needs --out FILE.png")
    gen.add_argument("--batch-size", type=int, default=500)
