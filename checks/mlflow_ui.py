"""Does the MLflow UI show a person what ganpipe logs? Checked from the rendered pages, not the API.

Starts `mlflow server` on 127.0.0.1 over a project's store (<root>/mlflow.db, artifacts where the runs put
them), opens it in Debian's headless Chromium through chromedriver (plain W3C WebDriver over HTTP, so no
Python package is needed) and checks that
  1. the experiment's run table lists every finished run by name, and its chart view compares eval scores,
  2. the newest finished run with scores shows its eval metrics with their logged values,
  3. that run's charts hold the per-epoch `samples` image grid: a decoded picture fetched from the run's
     artifacts, with a step slider from 0 (the untrained G) to the last epoch.
It saves a screenshot of each page under --out. Installs chromium and chromium-driver with apt-get when they
are missing. Exit 0 when everything is visible, 1 with what is missing.

    python checks/mlflow_ui.py --root . --out docs/ui
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BROWSER = ("chromium", "chromedriver")
# charts render lazily, when scrolled into view: scroll the page's big scroll containers to their ends
SCROLL = ("Array.from(document.querySelectorAll('*')).filter(e => e.scrollHeight > e.clientHeight + 300)"
          ".forEach(e => { e.scrollTop = e.scrollHeight }); ")
SCROLL_STEP = ("Array.from(document.querySelectorAll('*')).filter(e => e.scrollHeight > e.clientHeight + 300)"
               ".forEach(e => { e.scrollTop += 400 }); ")
# the step box of an image chart is a React-controlled number input; each input event steps it by one
NEXT_STEP = ("const box = document.querySelector('input[type=number]'); Object.getOwnPropertyDescriptor("
             "HTMLInputElement.prototype, 'value').set.call(box, String(Number(box.value) + 1)); "
             "box.dispatchEvent(new Event('input', {bubbles: true}))")
CLOSE_ASSISTANT = "document.querySelectorAll('button[aria-label=Close]').forEach(b => b.click()); "


def picture(fragment: str) -> str:
    """JS: [width, height] of every decoded <img> whose URL contains `fragment`."""
    return (f"return Array.from(document.images).filter(i => i.src.includes('{fragment}') && i.complete && "
            f"i.naturalWidth > 0).map(i => [i.naturalWidth, i.naturalHeight])")


class Missing(Exception):
    """Something the UI should show is not there."""


def ensure_browser() -> None:
    if all(shutil.which(b) for b in BROWSER):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit("error: needs Debian's chromium and chromium-driver: apt-get install chromium chromium-driver")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"]):
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url: str, body: dict | None = None, method: str | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method or ("POST" if data else "GET"),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as response:
        return json.loads(response.read() or b"{}")


def wait_until(what: str, probe, timeout: float = 90.0, every: float = 1.0):
    """Poll `probe` until it returns something truthy; Missing(what) after `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if result := probe():
                return result
        except (OSError, KeyError):  # the server or the page is still coming up
            pass
        time.sleep(every)
    raise Missing(what)


class Browser:
    """The few WebDriver commands the check needs."""

    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"
        options = {"binary": shutil.which("chromium"), "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1500,950"]}
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}}
        self.session = http(f"{self.base}/session", caps)["value"]["sessionId"]

    def _call(self, path: str, body: dict | None = None, method: str | None = None):
        return http(f"{self.base}/session/{self.session}{path}", body, method)["value"]

    def open(self, url: str) -> None:
        self._call("/url", {"url": url})

    def js(self, script: str, *args):
        return self._call("/execute/sync", {"script": script, "args": list(args)})

    def text(self) -> str:
        return self.js("return document.body.innerText")

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self._call("/screenshot")))

    def close(self) -> None:
        self._call("", method="DELETE")


def check(root: Path, out: Path, experiment: str) -> list[str]:
    """Run the three checks; returns what was seen (raises Missing for what was not)."""
    mlflow_port, driver_port = free_port(), free_port()
    server = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri",
                               f"sqlite:///{root / 'mlflow.db'}", "--host", "127.0.0.1", "--port", str(mlflow_port),
                               "--workers", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    driver = subprocess.Popen(["chromedriver", f"--port={driver_port}"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    ui = f"http://127.0.0.1:{mlflow_port}"
    browser = None
    try:
        wait_until("mlflow server answering", lambda: urllib.request.urlopen(f"{ui}/health", timeout=5).read())
        exp = http(f"{ui}/api/2.0/mlflow/experiments/get-by-name?experiment_name={experiment}")["experiment"]
        runs = http(f"{ui}/api/2.0/mlflow/runs/search", {"experiment_ids": [exp["experiment_id"]], "max_results": 1000})
        finished = [r for r in runs.get("runs", []) if r["info"]["status"] == "FINISHED"]
        scored = [r for r in finished if any(m["key"] == "eval/fid" for m in r["data"].get("metrics", []))]
        if not scored:
            raise Missing(f"a finished run with eval scores in experiment {experiment!r} (run `make repro` first)")
        run = max(scored, key=lambda r: r["info"]["start_time"])
        run_id, name = run["info"]["run_id"], run["info"]["run_name"]
        metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
        epochs = int(next(p["value"] for p in run["data"]["params"] if p["key"] == "train.epochs"))
        browser = wait_until("chromedriver answering", lambda: Browser(driver_port))
        seen = []

        base = f"{ui}/#/experiments/{exp['experiment_id']}"
        browser.open(f"{base}/runs")
        names = sorted({r["info"]["run_name"] for r in finished})
        wait_until(f"every finished run name in the run table ({names})",
                   lambda: all(n in browser.text() for n in names))
        browser.js(CLOSE_ASSISTANT)
        browser.screenshot(out / "runs.png")
        seen.append(f"run table lists all {len(names)} finished runs")

        browser.open(f"{base}/runs?compareRunsMode=CHART")
        page = []  # charts render only while in view: scroll down step by step and collect what was shown
        wait_until("the eval/fid and eval/is charts across runs in the chart view", lambda: page.append(
            browser.js(SCROLL_STEP + "return document.body.innerText")) or all(
            f"{k}\n" in "".join(page) for k in ("eval/fid", "eval/is")))
        browser.js(CLOSE_ASSISTANT + "Array.from(document.querySelectorAll('*')).filter(e => e.scrollHeight > "
                                     "e.clientHeight + 300).forEach(e => { e.scrollTop = 0 })")
        browser.screenshot(out / "compare.png")
        seen.append("chart view compares eval/fid and eval/is across runs")

        browser.open(f"{base}/runs/{run_id}")
        shown = {k: v for k, v in metrics.items() if k.startswith(("eval/", "eval_real/"))}
        wait_until(f"the eval metrics of run {name} on its page", lambda: all(k in browser.text() for k in shown))
        for key in ("eval/fid", "eval/is"):
            shown_as = browser.js("return String(arguments[0])", metrics[key])  # as the page's JS prints it
            wait_until(f"{key} = {shown_as} on the run page", lambda: shown_as in browser.text())
        browser.js(CLOSE_ASSISTANT)
        browser.screenshot(out / "run.png")
        seen.append(f"run {name} shows {len(shown)} eval metrics (eval/fid {metrics['eval/fid']:.4g}, "
                    f"eval/is {metrics['eval/is']:.4g})")

        browser.open(f"{base}/runs/{run_id}/model-metrics")
        size = wait_until("a rendered `samples` image grid in the run's charts",
                          lambda: browser.js(SCROLL + picture("samples%2Bstep%2B0%2B")))
        slider = browser.js("return Array.from(document.querySelectorAll('[role=slider]')).map(s => "
                            "[s.getAttribute('aria-valuemin'), s.getAttribute('aria-valuemax')])")
        if ["0", str(epochs)] not in slider:
            raise Missing(f"an image step slider from 0 to {epochs} (found {slider})")
        for _ in range(3 * epochs):  # each input event moves the chart's step by one
            if browser.js(picture(f"samples%2Bstep%2B{epochs}%2B")):
                break
            browser.js(NEXT_STEP)
            time.sleep(0.2)
        wait_until(f"the epoch-{epochs} grid after moving the step slider to its end",
                   lambda: browser.js(picture(f"samples%2Bstep%2B{epochs}%2B")))
        browser.js(CLOSE_ASSISTANT + "Array.from(document.images).find(i => i.src.includes('samples'))"
                                     ".scrollIntoView({block: 'center'})")
        browser.screenshot(out / "samples.png")
        seen.append(f"`samples` grid renders ({size[0][0]}x{size[0][1]} px) at step 0 and at step {epochs}, "
                    f"slider steps 0..{epochs}")
        return seen
    finally:
        if browser is not None:
            browser.close()
        for proc in (driver, server):
            proc.terminate()
            proc.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="project holding mlflow.db (default: .)")
    parser.add_argument("--out", type=Path, default=Path("docs/ui"), help="folder for the screenshots")
    parser.add_argument("--experiment", default="ganpipe")
    args = parser.parse_args()
    root = args.root.resolve()
    if not (root / "mlflow.db").is_file():
        sys.exit(f"error: no MLflow store at {root / 'mlflow.db'}; run `make repro` first")
    ensure_browser()
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        seen = check(root, args.out, args.experiment)
    except Missing as exc:
        print(f"FAIL: the MLflow UI does not show {exc}", file=sys.stderr)
        return 1
    print("\n".join(f"ok: {s}" for s in seen) + f"\nscreenshots in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
