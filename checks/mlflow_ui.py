"""Does the MLflow UI show a person what ganpipe logs? Checked from the rendered pages, not the API.

Starts `mlflow server` on 127.0.0.1 over a project's store (<root>/mlflow.db, artifacts where the runs put
them), opens it in Debian's headless Chromium through chromedriver (plain W3C WebDriver over HTTP, so no
Python package is needed) with a fresh profile, as a new user would, and checks that
  1. the experiment's landing page leads to every finished run: a fresh browser lands on MLflow 3's GenAI
     overview, whose "Training runs" link lists them; the landing page in the "Model training" view
     (`?workflowType=machine_learning`, what the toggle at the top left sets) opens on the run table;
  2. the chart view compares the eval/fid and eval/is charts across runs;
  3. the newest scored run's page shows every eval/* and eval_real/* metric under its exact name with its
     logged value, and an evaluation run's page names the training run it scored (its parent run);
  4. that run's charts hold the per-epoch `samples` image grid: a decoded picture fetched from the run's
     artifacts, with a step slider from 0 (the untrained G) to the last epoch.
It saves a screenshot of each page under --out. Installs chromium and chromium-driver with apt-get when they
are missing. Exit 0 when everything is visible, 1 with what is missing, 3 when no browser can be had.

    python checks/mlflow_ui.py --root . --out docs/ui
    python checks/mlflow_ui.py --server "$MLFLOW_TRACKING_URI" --out /tmp/ui   # a running (team) server

Against a server with logins, MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD are sent as HTTP basic
auth, by the browser too (on every request, as a person's browser does after the login prompt).
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


def ensure_browser() -> str | None:
    """None when chromium and chromedriver are there (installed with apt-get when missing and possible), else
    why they cannot be had here."""
    if all(shutil.which(b) for b in BROWSER):
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver, as root)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"]):
        done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            return f"`{' '.join(cmd)}` failed: {done.stderr.strip()[-300:]}"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def basic_auth() -> dict[str, str]:
    """The Authorization header of $MLFLOW_TRACKING_USERNAME/PASSWORD, or none."""
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if not user or password is None:
        return {}
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def http(url: str, body: dict | None = None, method: str | None = None, auth: bool = True) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method or ("POST" if data else "GET"),
                                 headers={"Content-Type": "application/json", **(basic_auth() if auth else {})})
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
        self.session = http(f"{self.base}/session", caps, auth=False)["value"]["sessionId"]
        if header := basic_auth():  # through the DevTools protocol: every request the page makes carries it
            self._call("/goog/cdp/execute", {"cmd": "Network.enable", "params": {}})
            self._call("/goog/cdp/execute", {"cmd": "Network.setExtraHTTPHeaders", "params": {"headers": header}})

    def _call(self, path: str, body: dict | None = None, method: str | None = None):
        return http(f"{self.base}/session/{self.session}{path}", body, method, auth=False)["value"]

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


ML = "workflowType=machine_learning"  # MLflow 3's "Model training" view (the GenAI view is a fresh browser's default)
# the run page lists each metric as a row: its name, then its value
ROWS = ("return Array.from(document.querySelectorAll('[role=row], tr')).map(r => r.innerText.split('\\n')"
        ".map(c => c.trim()).filter(c => c)).filter(c => c.length === 2)")


def landing(browser: Browser, base: str, names: list[str], out: Path) -> list[str]:
    """A fresh browser on the experiment's landing page finds every top-level run, in either view."""
    browser.open(base)
    wait_until("a 'Training runs' link on the experiment's landing page", lambda: browser.js(
        "return Array.from(document.querySelectorAll('a')).some(a => a.innerText.trim() === 'Training runs')"))
    browser.js("Array.from(document.querySelectorAll('a')).find(a => a.innerText.trim() === 'Training runs').click()")
    wait_until(f"every run ({names}) after clicking 'Training runs'", lambda: all(n in browser.text() for n in names))
    browser.open(f"{base}?{ML}")
    wait_until(f"every run ({names}) on the landing page in the Model training view",
               lambda: "/runs" in browser.js("return location.href") and all(n in browser.text() for n in names))
    browser.js(CLOSE_ASSISTANT)
    browser.screenshot(out / "runs.png")
    return [f"landing page: 'Training runs' lists every top-level run ({len(names)} names; GenAI view), and the Model "
            f"training view opens on them"]


def run_page(browser: Browser, base: str, run: dict, out: Path | None) -> str:
    """Every eval/* and eval_real/* metric of `run` in its page's metric table, by exact name and value."""
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"] if m["key"].startswith(("eval/", "eval_real/"))}
    browser.open(f"{base}/runs/{run['info']['run_id']}?{ML}")
    rows = wait_until(f"the metric table of run {run['info']['run_name']}",
                      lambda: (found := dict(browser.js(ROWS))) and all(k in found for k in metrics) and found)
    for key, value in sorted(metrics.items()):
        shown_as = browser.js("return String(arguments[0])", value)  # as the page's JS prints a number
        if rows[key] != shown_as:
            raise Missing(f"{key} = {shown_as} on the page of run {run['info']['run_name']} (it shows {rows[key]!r})")
    if out is not None:
        browser.js(CLOSE_ASSISTANT)
        browser.screenshot(out / "run.png")
    return f"run {run['info']['run_name']} shows all {len(metrics)} eval metrics by name with their logged values"


def parent_link(browser: Browser, base: str, run: dict, parent: dict) -> str:
    """An evaluation run's page names the training run it scored, as a link."""
    name, parent_id = parent["info"]["run_name"], parent["info"]["run_id"]
    browser.open(f"{base}/runs/{run['info']['run_id']}?{ML}")
    wait_until(f"'Parent run {name}' on the page of evaluation run {run['info']['run_name']}", lambda: (
        f"Parent run\n{name}" in browser.text() and browser.js(
            "return Array.from(document.querySelectorAll('a')).some(a => (a.getAttribute('href') || '')"
            ".endsWith('/runs/' + arguments[0]))", parent_id)))
    return f"evaluation run {run['info']['run_name']} links to its training run {name}"


def image_history(browser: Browser, base: str, run: dict, epochs: int, out: Path) -> str:
    """The `samples` image chart renders at step 0 and, after moving its slider to the end, at the last epoch."""
    browser.open(f"{base}/runs/{run['info']['run_id']}/model-metrics?{ML}")
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
    return f"`samples` grid renders ({size[0][0]}x{size[0][1]} px) at step 0 and at step {epochs}, slider steps 0..{epochs}"


def check(root: Path | None, out: Path, experiment: str, server_url: str | None = None) -> list[str]:
    """Every check above, on `server_url` or else on a server started over <root>/mlflow.db; returns what was
    seen (raises Missing for what was not)."""
    mlflow_port, driver_port = free_port(), free_port()
    server = None if server_url else subprocess.Popen([
        str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--host", "127.0.0.1", "--port", str(mlflow_port), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    driver = subprocess.Popen(["chromedriver", f"--port={driver_port}"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    ui = server_url.rstrip("/") if server_url else f"http://127.0.0.1:{mlflow_port}"
    browser = None
    try:
        wait_until("mlflow server answering", lambda: urllib.request.urlopen(f"{ui}/health", timeout=5).read())
        exp = http(f"{ui}/api/2.0/mlflow/experiments/get-by-name?experiment_name={experiment}")["experiment"]
        runs = http(f"{ui}/api/2.0/mlflow/runs/search", {"experiment_ids": [exp["experiment_id"]], "max_results": 1000})
        finished = [r for r in runs.get("runs", []) if r["info"]["status"] == "FINISHED"]
        tags = {r["info"]["run_id"]: {t["key"]: t["value"] for t in r["data"].get("tags", [])} for r in finished}
        training = [r for r in finished if tags[r["info"]["run_id"]].get("ganpipe.run_kind", "training") == "training"]
        scored = [r for r in training if any(m["key"] == "eval/fid" for m in r["data"].get("metrics", []))]
        if not scored:
            raise Missing(f"a finished training run with eval scores in experiment {experiment!r} (run `make repro`)")
        run = max(scored, key=lambda r: r["info"]["start_time"])
        epochs = int(next(p["value"] for p in run["data"]["params"] if p["key"] == "train.epochs"))
        browser = wait_until("chromedriver answering", lambda: Browser(driver_port))
        base = f"{ui}/#/experiments/{exp['experiment_id']}"
        top = sorted({r["info"]["run_name"] for r in finished if "mlflow.parentRunId" not in tags[r["info"]["run_id"]]})
        seen = landing(browser, base, top, out)

        browser.open(f"{base}/runs?compareRunsMode=CHART&{ML}")
        page = []  # charts render only while in view: scroll down step by step and collect what was shown
        wait_until("the eval/fid and eval/is charts across runs in the chart view", lambda: page.append(
            browser.js(SCROLL_STEP + "return document.body.innerText")) or all(
            f"{k}\n" in "".join(page) for k in ("eval/fid", "eval/is")))
        browser.js(CLOSE_ASSISTANT + "Array.from(document.querySelectorAll('*')).filter(e => e.scrollHeight > "
                                     "e.clientHeight + 300).forEach(e => { e.scrollTop = 0 })")
        browser.screenshot(out / "compare.png")
        seen.append("chart view compares eval/fid and eval/is across runs")

        seen.append(run_page(browser, base, run, out))
        by_id = {r["info"]["run_id"]: r for r in finished}
        evaluations = [r for r in finished if tags[r["info"]["run_id"]].get("mlflow.parentRunId") in by_id]
        if evaluations:
            evaluation = max(evaluations, key=lambda r: r["info"]["start_time"])
            seen.append(run_page(browser, base, evaluation, None))
            seen.append(parent_link(browser, base, evaluation, by_id[tags[evaluation["info"]["run_id"]]["mlflow.parentRunId"]]))
        seen.append(image_history(browser, base, run, epochs, out))
        return seen
    finally:
        if browser is not None:
            browser.close()
        for proc in filter(None, (driver, server)):
            proc.terminate()
            proc.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="project holding mlflow.db (default: .)")
    parser.add_argument("--out", type=Path, default=Path("docs/ui"), help="folder for the screenshots")
    parser.add_argument("--experiment", default="ganpipe")
    parser.add_argument("--server", metavar="URL", help="check this running MLflow server instead of --root's store")
    args = parser.parse_args()
    root = args.root.resolve()
    if not args.server and not (root / "mlflow.db").is_file():
        sys.exit(f"error: no MLflow store at {root / 'mlflow.db'}; run `make repro` first")
    if reason := ensure_browser():
        print(f"unavailable: {reason}", file=sys.stderr)
        return 3
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        seen = check(root, args.out, args.experiment, args.server)
    except Missing as exc:
        print(f"FAIL: the MLflow UI does not show {exc}", file=sys.stderr)
        return 1
    print("\n".join(f"ok: {s}" for s in seen) + f"\nscreenshots in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
