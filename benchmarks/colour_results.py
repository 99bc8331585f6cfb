"""The README's colour results: ganpipe's colour config (DCGAN and ResNet) against pytorch/examples' DCGAN on a
real image folder, each given the same wall-clock training time on this machine.

  python benchmarks/colour_results.py --root ../shared/data/cifar10-train-4660 [--work DIR] [--resnet-epochs 15]

1. `prepare` and `train_classifier` once (configs/colour.yaml with data.root = --root): the held-out split and
   the evaluation classifier every arm is scored with.
2. Each ganpipe arm runs the real `train`, `sample` and `evaluate` stages (each in its own folder and MLflow
   store under --work); its train stage's wall-clock time, process start and logging included, is its budget.
3. The peer (benchmarks/peer_dcgan.py) trains on the same training files (the held-out ones are left out, as
   for ganpipe) for the DCGAN arm's budget, samples as many images, and is scored by `ganpipe evaluate
   --samples` against the same held-out split with the same classifier.
4. Inception space (--inception-n N, default 5,000; 0 = off): the `reference` stage once in the base folder,
   then the first N samples of every arm through `ganpipe evaluate --samples --features inception`: FID (and
   FID extrapolated to infinite n), KID, precision/recall, coverage and copy detection against the training split.
   With --rescore, only this step runs, on the arms an earlier run left in --work.
Prints one table (markdown) and writes it with every score to DIR/colour_results.json; the sample grids are
copied to docs/colour/.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
ARMS = {  # name -> overrides on top of configs/colour.yaml
    "ganpipe-dcgan": [],
    "ganpipe-resnet": ["model.arch=resnet", "model.g_hidden=[64,64,64]", "model.d_hidden=[64,64,64,64]",
                       "model.g_activation=relu", "model.d_activation=relu"],
}
EXTRA: list[str] = []
SHOWN = ("fid", "kid", "is", "precision", "recall", "coverage", "class_agreement", "copy_share", "copy_ct")
INCEPTION_SHOWN = ("fid", "fid_infinity", "kid", "precision", "recall", "coverage", "copy_share", "copy_ct")


def params_for(extra: list[str], root: Path, config: str = "colour") -> dict:
    from ganpipe.params import overlays, overrides

    tree = overlays.merge(yaml.safe_load((ROOT / "params.yaml").read_text()),
                          overlays.read(ROOT / "configs" / f"{config}.yaml"))
    return overrides.apply_overrides(tree, [f"data.root={root}"] + EXTRA + extra)


def stage(name: str, cwd: Path) -> float:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{cwd / 'mlflow.db'}"}
    env.pop("DVC_ROOT", None)
    start = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "stages" / f"{name}.py")], cwd=cwd, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, required=True, help="a class-per-folder image folder")
    ap.add_argument("--work", type=Path, default=Path("/tmp/ganpipe-colour"))
    ap.add_argument("--resnet-epochs", type=int, default=15, help="ResNet epochs (about the DCGAN's time here)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="more overrides for every arm")
    ap.add_argument("--inception-n", type=int, default=5000, help="samples per arm in Inception space (0 = off)")
    ap.add_argument("--rescore", action="store_true", help="only the Inception step, on the arms in --work")
    args = ap.parse_args()
    global EXTRA
    EXTRA = args.set
    root, work = args.root.resolve(), args.work.resolve()
    if args.rescore:
        results = json.loads((work / "colour_results.json").read_text())
        inception_columns(work, root, args.inception_n, results)
        print(render_inception(results, args.inception_n))
        (work / "colour_results.json").write_text(json.dumps(results, indent=1))
        return
    shutil.rmtree(work, ignore_errors=True)
    base = work / "base"
    base.mkdir(parents=True)
    (base / "params.yaml").write_text(yaml.safe_dump(params_for([], root), sort_keys=False))
    prep_s, clf_s = stage("prepare", base), stage("train_classifier", base)
    clf_acc = json.loads((base / "metrics" / "classifier.json").read_text())["holdout_accuracy"]
    results: dict[str, dict] = {}
    for name, extra in ARMS.items():
        extra = extra + ([f"train.epochs={args.resnet_epochs}"] if "resnet" in name else [])
        arm = work / name
        arm.mkdir()
        params = params_for(extra, root)
        (arm / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        for sub in ("data", "models", "metrics"):
            shutil.copytree(base / sub, arm / sub, symlinks=True)
        train_s = stage("train", arm)
        stage("sample", arm)
        stage("evaluate", arm)
        scores = json.loads((arm / "metrics" / "eval.json").read_text())
        train = json.loads((arm / "metrics" / "train.json").read_text())
        results[name] = {"train_s": train_s, "epochs": params["train"]["epochs"], "images_seen": train["images_seen"],
                         **{k: scores["fake"][k] for k in SHOWN}, "real": {k: scores["real"][k] for k in SHOWN}}
        (ROOT / "docs" / "colour").mkdir(parents=True, exist_ok=True)
        shutil.copy(arm / "plots" / "sample_grid.png", ROOT / "docs" / "colour" / f"{name}.png")
        print(name, json.dumps(results[name]), flush=True)
    results["peer-dcgan"] = peer(work, root, params_for([], root), results["ganpipe-dcgan"]["train_s"])
    print("peer-dcgan", json.dumps(results["peer-dcgan"]), flush=True)
    table = render(results, prep_s, clf_s, clf_acc, params_for([], root)["sample"]["n"])
    print(table)
    (work / "colour_results.json").write_text(json.dumps(results, indent=1))
    if args.inception_n:
        inception_columns(work, root, args.inception_n, results)
        print(render_inception(results, args.inception_n))
        (work / "colour_results.json").write_text(json.dumps(results, indent=1))


def inception_columns(work: Path, root: Path, n: int, results: dict) -> None:
    """Every arm's first n samples scored in Inception space against the training split (results[arm]['inception'];
    the ceiling, the held-out split against the training split, under 'real')."""
    from ganpipe.params import config
    from ganpipe.pipeline.external import evaluate_samples

    params = params_for(["evaluate.features=inception", f"evaluate.inception_n={n}"], root)
    (work / "base" / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    start = time.perf_counter()
    stage("reference", work / "base")
    results["reference_s"] = time.perf_counter() - start
    cfg = config.from_dict(params)
    cwd = os.getcwd()
    os.chdir(work / "base")
    try:
        for name in ARMS.keys() | {"peer-dcgan"}:
            arm = work / name
            samples = arm / ("samples.safetensors" if name == "peer-dcgan" else "samples/samples.safetensors")
            scores = evaluate_samples(cfg, samples, arm / "inception.json", None)["inception"]
            results[name]["inception"] = {k: scores["fake"][k] for k in INCEPTION_SHOWN}
            results["inception_real"] = {k: scores["real"][k] for k in INCEPTION_SHOWN if k in scores["real"]}
            print(name, "inception", json.dumps(results[name]["inception"]), flush=True)
    finally:
        os.chdir(cwd)


def render_inception(results: dict, n: int) -> str:
    rows = ["| arm (Inception-V3 space) | FID | FID∞ | KID | precision | recall | coverage | copy share | C_T |",
            "|---|---|---|---|---|---|---|---|---|"]
    for name in ("ganpipe-dcgan", "ganpipe-resnet", "peer-dcgan"):
        r = results[name]["inception"]
        rows.append(f"| {name} | {r['fid']:.2f} | {r['fid_infinity']:.2f} | {r['kid']:.4f} | {r['precision']:.3f} | "
                    f"{r['recall']:.3f} | {r['coverage']:.3f} | {r['copy_share']:.3f} | {r['copy_ct']:.2f} |")
    real = results["inception_real"]
    rows.append(f"| real held-out vs train (ceiling, n = held-out split) | {real['fid']:.2f} | "
                f"{real['fid_infinity']:.2f} | {real['kid']:.4f} | {real['precision']:.3f} | {real['recall']:.3f} | "
                f"{real['coverage']:.3f} | | |")
    peer, ours = results["peer-dcgan"]["inception"]["fid"], results["ganpipe-dcgan"]["inception"]["fid"]
    rows.append(f"\nInception FID ({n:,} samples vs the training split): ganpipe DCGAN {ours:.2f} vs peer {peer:.2f} "
                f"= {100 * (1 - ours / peer):.0f}% lower. Reference features: {results['reference_s']:.0f} s.")
    return "\n".join(rows)


def peer(work: Path, root: Path, params: dict, seconds: float) -> dict:
    import peer_dcgan
    import torch
    import torchvision.transforms as T
    from safetensors.torch import save_file
    from torchvision.datasets import ImageFolder

    from ganpipe.data import folder, images
    from ganpipe.data.split import stratified_indices
    from ganpipe.params import config
    from ganpipe.pipeline.external import evaluate_samples

    torch.set_num_threads(params["train"]["threads"])
    size = params["data"]["image_size"]
    full = ImageFolder(str(root), transform=T.Compose([T.Resize(size), T.CenterCrop(size), T.ToTensor(),
                                                       T.Normalize((0.5,) * 3, (0.5,) * 3)]))
    listing = folder.list_folder(root)  # ganpipe's split: the same held-out files are left out of training
    assert [str(Path(p)) for p, _ in full.samples] == listing.files, "ImageFolder and ganpipe list different files"
    _, train_idx = stratified_indices(torch.from_numpy(listing.labels), params["data"]["holdout_fraction"],
                                      params["data"]["seed"])
    G, stats = peer_dcgan.train(torch.utils.data.Subset(full, train_idx.tolist()), seconds, size=size)
    fake = peer_dcgan.sample(G, params["sample"]["n"])
    arm = work / "peer-dcgan"
    arm.mkdir()
    save_file({"images": fake}, str(arm / "samples.safetensors"))
    images.save_png(images.make_grid(fake[:100], 10), ROOT / "docs" / "colour" / "peer-dcgan.png")
    cfg = config.from_dict(params)
    cwd = os.getcwd()
    os.chdir(work / "base")
    try:
        scores = evaluate_samples(cfg, arm / "samples.safetensors", arm / "eval.json", None)
    finally:
        os.chdir(cwd)
    return {**stats, **{k: scores["fake"].get(k, float("nan")) for k in SHOWN}}


def render(results: dict, prep_s: float, clf_s: float, clf_acc: float, n: int) -> str:
    rows = ["| arm | training (s, this machine) | images seen | FID (clf) | KID (clf) | IS | precision | recall |"
            " coverage |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        rows.append(f"| {name} | {r['train_s']:.0f} | {r['images_seen']:,} | {r['fid']:.2f} | {r['kid']:.4f} | "
                    f"{r['is']:.2f} | {r['precision']:.3f} | {r['recall']:.3f} | {r['coverage']:.3f} |")
    real = results["ganpipe-dcgan"]["real"]
    rows.append(f"| real held-out vs train (ceiling) | | | {real['fid']:.2f} | {real['kid']:.4f} | {real['is']:.2f} | "
                f"{real['precision']:.3f} | {real['recall']:.3f} | {real['coverage']:.3f} |")
    peer, ours = results["peer-dcgan"]["fid"], results["ganpipe-dcgan"]["fid"]
    rows.append(f"\nFID (classifier space, {n:,} samples vs the held-out split): ganpipe DCGAN {ours:.2f} vs peer "
                f"{peer:.2f} = {100 * (1 - ours / peer):.0f}% lower. prepare {prep_s:.0f} s, classifier "
                f"{clf_s:.0f} s (held-out accuracy {clf_acc:.3f}).")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
