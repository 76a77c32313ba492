"""A real sweep seen in MLflow's real UI, in headless Chromium, on loopback only.

One small digits sweep, ``mlflow ui`` on a free 127.0.0.1 port against its store, and Chromium
driven over the DevTools pipe (tests/_browser.py). The UI is a React app: every check waits
until the page shows what it looks for, then asserts on its text.

``GRAFT_HPO_UI_SHOTS=docs/img pytest -m browser tests/tracking/test_mlflow_ui.py`` refreshes the
README's screenshots (mlflow_runs.png, mlflow_parent_front.png); otherwise they go to a temporary
folder, to look at when a check fails.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests._browser import Chromium
from tests._browser import Page
from tests._browser import chromium_path
from tests._cluster import BIN
from tests._cluster import HOST
from tests._cluster import free_ports
from tests._cluster import http_ok
from tests._cluster import loopback_env
from tests._cluster import start
from tests._cluster import stop
from tests._cluster import wait_until

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,  # a sweep, a server and a browser: ~30 s
    pytest.mark.ray,
    pytest.mark.mlflow,
    pytest.mark.skipif(chromium_path() is None, reason="needs Chromium (Debian: chromium)"),
]

QUICK = [
    "train.epochs=2",
    "train.device=cpu",
    "emissions.measure_power_secs=1",
    "search.max_concurrent=2",
    "tracking.experiment=digits",
]
ASSISTANT_CLOSE = '[data-component-id="mlflow.assistant.chat_panel.close"]'
EXPAND_CHILD_RUNS = '[data-component-id*="runnamecellrenderer"]'  # the "+" by a parent run
GENAI_ONLY = ("Sessions", "Judges", "Agent versions")  # sidebar entries of the GenAI view


@dataclass
class Seen:
    """The sweep as the UI serves it."""

    base: str  # http://127.0.0.1:<port>
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    parent_name: str
    trial_names: list[str]
    front_png_width: int  # pixels, read from the logged file
    page: Page
    shots: Path


@pytest.fixture(scope="module")
def seen(ray_local: Path) -> Iterator[Seen]:
    from mlflow import MlflowClient

    from graft_hpo.sweep import run_sweep
    from graft_hpo.tracking import TAG_ROLE
    from graft_hpo.tracking import ensure_experiment
    from graft_hpo.tracking import query_runs
    from graft_hpo.tracking import resolve_tracking_uri

    root = Path(tempfile.mkdtemp(prefix="graft-hpo-ui-"))
    executable = chromium_path()
    assert executable is not None
    server = browser = None
    try:
        uri = resolve_tracking_uri(f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
        # the store first (the UI server must not race its creation), then the server starts
        # while the sweep runs
        experiment_id = ensure_experiment(uri, "digits")
        (port,) = free_ports(1)
        cmd = [str(BIN / "mlflow"), "ui", "--backend-store-uri", uri]
        cmd += ["--host", HOST, "--port", str(port), "--workers", "1"]
        server = start("mlflow-ui", cmd, loopback_env(root / "home"), root)
        result = run_sweep(
            "digits", trials=3, overrides=QUICK, tracking_uri=uri, sweep_dir=root / "sweep"
        )
        runs = query_runs(uri, "digits", sweep_id=result.sweep_id)
        trials = sorted(r.tags["mlflow.runName"] for r in runs if r.tags.get(TAG_ROLE) == "trial")
        png = MlflowClient(uri).download_artifacts(
            result.parent_run_id, "pareto/front.png", str(root)
        )
        width = struct.unpack(">I", Path(png).read_bytes()[16:20])[0]  # the IHDR chunk
        base = f"http://{HOST}:{port}"
        health = f"{base}/health"
        wait_until(lambda: http_ok(health), timeout_s=90, what="mlflow ui", daemons=[server])
        browser = Chromium(executable)
        shots = Path(os.environ.get("GRAFT_HPO_UI_SHOTS") or root / "shots")
        yield Seen(
            base=base,
            tracking_uri=uri,
            experiment_id=experiment_id,
            parent_run_id=result.parent_run_id,
            parent_name=result.sweep_id,
            trial_names=trials,
            front_png_width=width,
            page=browser.new_page(width=1400, height=760),
            shots=shots,
        )
    finally:
        if browser is not None:
            browser.close()
        if server is not None:
            stop(server, grace_s=2.0)
        shutil.rmtree(root, ignore_errors=True)


def _close_assistant(page: Page) -> None:
    if page.evaluate(f"document.querySelector({ASSISTANT_CLOSE!r}) !== null"):
        page.click(ASSISTANT_CLOSE)  # the side panel takes a third of the width


def test_the_experiment_opens_on_its_runs_with_the_trials_nested(seen: Seen) -> None:
    from mlflow import MlflowClient

    from graft_hpo.tracking import ui_url

    tags = MlflowClient(seen.tracking_uri).get_experiment(seen.experiment_id).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"  # MLflow's own mark
    page = seen.page
    page.goto(ui_url(seen.base, seen.experiment_id))
    page.wait_for_selector(EXPAND_CHILD_RUNS)  # the parent run's row has rendered
    text = page.wait_for_text(seen.parent_name, "matching runs")
    assert "/runs?" in page.evaluate("location.hash")
    assert not [entry for entry in GENAI_ONLY if entry in text], "GenAI view, not the runs"
    assert f"{1 + len(seen.trial_names)} matching runs" in text
    for name in seen.trial_names:
        assert name not in text  # nested under the parent, folded

    _close_assistant(page)
    page.click(EXPAND_CHILD_RUNS)
    page.wait_for_text(*seen.trial_names)
    page.screenshot(seen.shots / "mlflow_runs.png")


def test_the_parent_run_lists_its_trials_and_shows_the_front(seen: Seen) -> None:
    from graft_hpo.tracking import ui_url

    page = seen.page
    page.goto(ui_url(seen.base, seen.experiment_id, seen.parent_run_id))
    text = page.wait_for_text("Child runs", *seen.trial_names)
    assert seen.parent_name in text
    children = text[text.index("Child runs") :]
    assert all(name in children for name in seen.trial_names)

    page.goto(ui_url(seen.base, seen.experiment_id, seen.parent_run_id, "pareto/front.png"))
    page.wait_for_text("pareto/front.png", "Artifacts")
    # the previewer shows the file it fetched (a blob: URL) as an image of the PNG's size
    loaded = (
        "[...document.images].some(i => i.src.startsWith('blob:') && i.complete"
        f" && i.naturalWidth === {seen.front_png_width})"
    )
    page.wait_for(lambda: page.evaluate(loaded), what="the Pareto plot, loaded")
    _close_assistant(page)
    page.resize(1400, 960)  # the whole plot
    try:
        page.screenshot(seen.shots / "mlflow_parent_front.png")
    finally:
        page.resize(1400, 760)


def test_the_front_is_one_click_from_the_parent(seen: Seen) -> None:
    from graft_hpo.tracking import ui_url

    page = seen.page
    page.goto(ui_url(seen.base, seen.experiment_id, seen.parent_run_id))
    page.wait_for_text("Child runs", "Description")
    link = "a[href*='/artifacts/pareto/front.png']"
    described = f"document.querySelector({link!r}) !== null"
    page.wait_for(
        lambda: page.evaluate(described) or "No description" in page.text(),
        what="the parent run's description",
    )
    assert page.evaluate(described), "no link to the Pareto plot in the parent's description"
    href = page.evaluate(f"document.querySelector({link!r}).href")
    assert href.startswith(seen.base) and seen.parent_run_id in href
