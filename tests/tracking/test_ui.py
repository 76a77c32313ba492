"""Links into MLflow's UI, and the artifact link in a run's description (a real store)."""

from __future__ import annotations

import pytest

from graft_hpo.tracking import link_artifact
from graft_hpo.tracking import ui_url
from graft_hpo.tracking._ui import artifact_note


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("http://127.0.0.1:5000", "7"), "http://127.0.0.1:5000/#/experiments/7/runs"),
        (("http://h:1/prefix/", "7", "r1"), "http://h:1/prefix/#/experiments/7/runs/r1"),
        (
            ("", "7", "r1", "pareto/front.png"),
            "#/experiments/7/runs/r1/artifacts/pareto/front.png",
        ),
        (("", "7", "r1", "a b.txt"), "#/experiments/7/runs/r1/artifacts/a%20b.txt"),
    ],
)
def test_ui_url_opens_the_model_training_view(args: tuple[str, ...], expected: str) -> None:
    assert ui_url(*args) == f"{expected}?workflowType=machine_learning"


def test_artifact_note_links_the_file_and_shows_an_image() -> None:
    note = artifact_note("7", "r1", "pareto/front.png", "Pareto front")
    link, blank, image = note.splitlines()
    assert link == (
        "Pareto front: [pareto/front.png]"
        "(#/experiments/7/runs/r1/artifacts/pareto/front.png?workflowType=machine_learning)"
    )
    assert blank == ""
    assert image == "![Pareto front](get-artifact?path=pareto%2Ffront.png&run_uuid=r1)"
    assert "\n" not in artifact_note("7", "r1", "pareto/front.csv", "Pareto front (CSV)")


@pytest.mark.mlflow
def test_link_artifact_appends_to_the_description_once(store_uri: str) -> None:
    from mlflow import MlflowClient

    from graft_hpo.tracking import ensure_experiment

    client = MlflowClient(tracking_uri=store_uri)
    experiment_id = ensure_experiment(store_uri, "ui-links")
    run_id = client.create_run(experiment_id).info.run_id
    link_artifact(store_uri, run_id, "pareto/front.png", "Pareto front")
    note = artifact_note(experiment_id, run_id, "pareto/front.png", "Pareto front")

    def description() -> str:
        return str(client.get_run(run_id).data.tags["mlflow.note.content"])

    assert description() == note
    link_artifact(store_uri, run_id, "pareto/front.png", "Pareto front")  # a resumed sweep
    assert description() == note
    # a description someone wrote is kept, the link goes below it
    client.set_tag(run_id, "mlflow.note.content", "lr sweep, second try\n")
    link_artifact(store_uri, run_id, "pareto/front.png", "Pareto front")
    assert description() == f"lr sweep, second try\n\n{note}"
