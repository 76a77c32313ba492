"""Links into MLflow's web UI that open on a sweep's runs, and the parent run's plot link.

MLflow 3.17's UI opens an experiment on the start page of the sidebar's switch, "GenAI" (an
"Overview" of traces, tokens and latency) until the browser has chosen "Model training" once.
The experiment's kind tag (set by :func:`ensure_experiment`) does not change that in 3.17,
``workflowType=machine_learning`` in the link does, so every link here carries it.

Example:
    >>> ui_url("http://127.0.0.1:5000", "1")
    'http://127.0.0.1:5000/#/experiments/1/runs?workflowType=machine_learning'
    >>> ui_url("", "1", "ab12", "pareto/front.png")
    '#/experiments/1/runs/ab12/artifacts/pareto/front.png?workflowType=machine_learning'
"""

from __future__ import annotations

from pathlib import PurePosixPath
from urllib.parse import quote
from urllib.parse import urlencode

from graft_hpo._names import TAG_NOTE
from graft_hpo.tracking._store import open_client
from graft_hpo.tracking._store import resolve_tracking_uri

__all__ = ["WORKFLOW_QUERY", "artifact_note", "link_artifact", "ui_url"]

WORKFLOW_QUERY = "workflowType=machine_learning"  # the sidebar's "Model training"
_IMAGES = {".png", ".jpg", ".jpeg", ".gif", ".svg"}


def ui_url(
    base: str, experiment_id: str, run_id: str | None = None, artifact: str | None = None
) -> str:
    """The UI page of an experiment's runs, of one run, or of one of a run's artifacts.

    Args:
        base: where the UI is served (``http://127.0.0.1:5000``); ``""`` -> a link relative to
            the UI's own page (for a run's description).
        experiment_id: the experiment's id.
        run_id: a run of the experiment; ``None`` -> the experiment's runs table.
        artifact: a file among the run's artifacts (``pareto/front.png``), shown in the
            run's Artifacts tab; needs ``run_id``.
    """
    route = f"#/experiments/{quote(experiment_id)}"
    if run_id is None:
        route += "/runs"
    else:
        route += f"/runs/{quote(run_id)}"
        if artifact is not None:
            route += f"/artifacts/{quote(artifact)}"
    prefix = f"{base.rstrip('/')}/" if base else ""
    return f"{prefix}{route}?{WORKFLOW_QUERY}"


def artifact_note(experiment_id: str, run_id: str, artifact: str, title: str) -> str:
    """Markdown for a run's description: a link to ``artifact``, and the image itself.

    The link opens the file in the run's Artifacts tab (one click from the run's page); an
    image is also shown inline, fetched from the UI's ``get-artifact`` endpoint. Both are
    relative, so they work whatever host, port or static prefix serves the UI.
    """
    lines = [f"{title}: [{artifact}]({ui_url('', experiment_id, run_id, artifact)})"]
    if PurePosixPath(artifact).suffix.lower() in _IMAGES:
        query = urlencode({"path": artifact, "run_uuid": run_id})
        lines += ["", f"![{title}](get-artifact?{query})"]
    return "\n".join(lines)


def link_artifact(tracking_uri: str | None, run_id: str, artifact: str, title: str) -> None:
    """Put a link to one of the run's artifacts (and the image) into its UI description.

    Appended to the description the run has (``mlflow.note.content``); a no-op when the
    same link is already there, so a resumed sweep may call it again.

    Args:
        tracking_uri: the store holding the run (``None`` -> default).
        run_id: the run, e.g. a sweep's parent.
        artifact: the artifact's path in the run (``pareto/front.png``), logged already.
        title: what the link says it is (``Pareto front``).

    Raises:
        ConfigError: the store cannot be opened.
    """
    client = open_client(resolve_tracking_uri(tracking_uri))
    run = client.get_run(run_id)
    note = artifact_note(run.info.experiment_id, run_id, artifact, title)
    current = run.data.tags.get(TAG_NOTE, "")
    if note not in current:
        client.set_tag(run_id, TAG_NOTE, f"{current.rstrip()}\n\n{note}".lstrip())
