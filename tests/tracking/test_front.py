"""pareto_front, tag_pareto, pareto_table and plot_front on sweeps written to a real store."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from graft_hpo.exceptions import ConfigError
from graft_hpo.pareto import front_of
from graft_hpo.pareto import pareto_table
from graft_hpo.pareto import plot_front
from graft_hpo.tracking import TAG_OBJECTIVES
from graft_hpo.tracking import TAG_ROLE
from graft_hpo.tracking import RunLogger
from graft_hpo.tracking import RunRecord
from graft_hpo.tracking import pareto_front
from graft_hpo.tracking import query_runs
from graft_hpo.tracking import sweep_objectives
from graft_hpo.tracking import sweep_runs
from graft_hpo.tracking import tag_pareto

pytestmark = pytest.mark.mlflow

EXPERIMENT = "front"
# name -> (val_acc, co2_kg, duration_s, status, extra tags)
TRIALS = {
    "a": (0.90, 3.0, 50.0, "FINISHED", {}),
    "a_twin": (0.90, 3.0, 40.0, "FINISHED", {}),  # duplicate of a: both on the front
    "b": (0.85, 1.0, 30.0, "FINISHED", {}),
    "c": (0.80, 2.0, 10.0, "FINISHED", {}),  # dominated by b on accuracy and CO2
    "d": (0.70, 0.5, 60.0, "FINISHED", {"strategy": "random"}),
    "stopped": (0.95, 0.4, 5.0, "FINISHED", {"early_stopped": "true"}),  # would dominate all
    "failed": (0.99, 0.1, 5.0, "FAILED", {}),
    "running": (0.99, 0.1, 5.0, "RUNNING", {}),
}


def _sweep(
    uri: str,
    sweep_id: str,
    trials: dict,
    objectives: list | None = None,
    experiment: str = EXPERIMENT,
) -> dict[str, str]:
    tags = {TAG_ROLE: "sweep", "sweep_id": sweep_id}
    if objectives is not None:
        tags[TAG_OBJECTIVES] = json.dumps(objectives)
    parent = RunLogger.start(uri, experiment, tags=tags)
    ids = {"parent": parent.run_id}
    for name, (acc, co2, seconds, status, extra) in trials.items():
        run = RunLogger.start(
            uri,
            experiment,
            run_name=name,
            parent_run_id=parent.run_id,
            tags={"sweep_id": sweep_id, "strategy": "graft", **extra},
        )
        run.log_params({"selection.fraction": 0.3})
        run.log_metrics({"val_acc": acc, "co2_kg": co2, "duration_s": seconds})
        if status != "RUNNING":
            run.end(status)
        ids[name] = run.run_id
    parent.end()
    return ids


@pytest.fixture(scope="module")
def sweeps(store_uri: str) -> dict[str, dict[str, str]]:
    """Three sweeps; s1 (the latest in EXPERIMENT) is the main one."""
    s0 = _sweep(store_uri, "front-s0", {"only": (0.5, 5.0, 1.0, "FINISHED", {})})
    s2 = _sweep(
        store_uri,
        "front-s2",
        {k: TRIALS[k] for k in ("a", "b", "c")},
        objectives=[["val_acc", "max"], ["duration_s", "min"]],
    )
    time.sleep(0.01)  # start times are in ms: make s1 strictly the latest sweep
    s1 = _sweep(store_uri, "front-s1", TRIALS, objectives=[["val_acc", "max"], ["co2_kg", "min"]])
    # a finished trial that never logged CO2 cannot be placed
    run = RunLogger.start(store_uri, EXPERIMENT, tags={"sweep_id": "front-s1"})
    run.log_metrics({"val_acc": 1.0})
    run.end()
    return {"s0": s0, "s1": s1, "s2": s2}


def test_front_of_latest_sweep(store_uri: str, sweeps: dict[str, dict[str, str]]) -> None:
    ids = sweeps["s1"]
    front = pareto_front(experiment=EXPERIMENT, tracking_uri=store_uri)
    # best accuracy first; the twins tie on both objectives and are ordered by run id
    twins = sorted([ids["a"], ids["a_twin"]])
    assert [p.run_id for p in front] == [*twins, ids["b"], ids["d"]]
    assert front[0].metrics["co2_kg"] == 3.0
    assert front[0].params == {"selection.fraction": "0.3"}
    assert front[-1].tags["strategy"] == "random"
    assert (
        pareto_front(experiment=EXPERIMENT, sweep_id="front-s1", tracking_uri=store_uri) == front
    )
    # no experiment given: the sweep is looked up in every experiment
    assert pareto_front(sweep_id="front-s1", tracking_uri=store_uri) == front


def test_front_without_experiment_or_sweep_is_the_latest_sweep_anywhere(
    store_uri: str, sweeps: dict[str, dict[str, str]]
) -> None:
    time.sleep(0.01)
    ids = _sweep(
        store_uri, "front-latest", {"x": (0.6, 1.0, 1.0, "FINISHED", {})}, experiment="front-2"
    )
    assert [p.run_id for p in pareto_front(tracking_uri=store_uri)] == [ids["x"]]


def test_front_of_an_older_sweep_and_its_objectives_tag(
    store_uri: str, sweeps: dict[str, dict[str, str]]
) -> None:
    (only,) = pareto_front(experiment=EXPERIMENT, sweep_id="front-s0", tracking_uri=store_uri)
    assert only.run_id == sweeps["s0"]["only"]
    # s2 optimises accuracy vs duration (its tag): c (10 s) joins, b (30 s) too, a leads
    s2 = sweeps["s2"]
    front = pareto_front(experiment=EXPERIMENT, sweep_id="front-s2", tracking_uri=store_uri)
    assert [p.run_id for p in front] == [s2["a"], s2["b"], s2["c"]]
    # explicit objectives beat the tag: on CO2, c is dominated by b
    front = pareto_front(
        sweep_id="front-s2",
        tracking_uri=store_uri,
        objectives=[("val_acc", "max"), ("co2_kg", "min")],
    )
    assert [p.run_id for p in front] == [s2["a"], s2["b"]]


def test_front_errors(store_uri: str, sweeps: dict[str, dict[str, str]], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'fornt' not found .*did you mean 'front'\?"):
        pareto_front(experiment="fornt", tracking_uri=store_uri)
    with pytest.raises(ConfigError, match="sweep_id 'nope' not found in experiment 'front'"):
        pareto_front(experiment=EXPERIMENT, sweep_id="nope", tracking_uri=store_uri)
    RunLogger.start(store_uri, "no-sweeps").end()
    with pytest.raises(ConfigError, match="no sweep found in experiment 'no-sweeps'"):
        pareto_front(experiment="no-sweeps", tracking_uri=store_uri)
    with pytest.raises(
        ConfigError, match=r"objectives\[1\]\.mode must be 'max' or 'min'; got 'low'"
    ):
        pareto_front(tracking_uri=store_uri, objectives=[("val_acc", "max"), ("co2_kg", "low")])
    empty = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    with pytest.raises(ConfigError, match="there is no MLflow store at"):
        pareto_front(tracking_uri=empty)
    assert not (tmp_path / "mlruns").exists()  # a query creates nothing


def test_tag_pareto_marks_winners_and_the_rest(
    store_uri: str, sweeps: dict[str, dict[str, str]]
) -> None:
    front = pareto_front(experiment=EXPERIMENT, sweep_id="front-s1", tracking_uri=store_uri)
    tag_pareto(front, tracking_uri=store_uri)
    tags = {
        r.run_id: r.tags.get("pareto")
        for r in query_runs(store_uri, EXPERIMENT, sweep_id="front-s1")
    }
    ids = sweeps["s1"]
    winners = {p.run_id for p in front}
    assert tags.pop(ids["parent"]) is None  # the sweep's own run is not a trial
    assert {run_id for run_id, value in tags.items() if value == "true"} == winners
    losers = {ids[k] for k in ("c", "stopped", "failed", "running")}
    assert losers <= {run_id for run_id, value in tags.items() if value == "false"}
    assert set(tags.values()) == {"true", "false"}
    # other sweeps are untouched
    (s0,) = query_runs(store_uri, EXPERIMENT, parent_run_id=sweeps["s0"]["parent"])
    assert "pareto" not in s0.tags


def test_front_of_the_runs_read_once_is_the_stores_front(
    store_uri: str, sweeps: dict[str, dict[str, str]]
) -> None:
    runs = sweep_runs(experiment=EXPERIMENT, sweep_id="front-s1", tracking_uri=store_uri)
    objectives = [("val_acc", "max"), ("co2_kg", "min")]
    front = front_of(runs, objectives)
    assert front == pareto_front(
        experiment=EXPERIMENT, sweep_id="front-s1", tracking_uri=store_uri, objectives=objectives
    )
    ids = sweeps["s1"]
    assert {p.run_id for p in front} == {ids[k] for k in ("a", "a_twin", "b", "d")}
    # tagging from those runs reads nothing more and tags exactly them
    tag_pareto(front, runs=runs, tracking_uri=store_uri)
    tags = {
        r.run_id: r.tags.get("pareto")
        for r in sweep_runs(experiment=EXPERIMENT, sweep_id="front-s1", tracking_uri=store_uri)
    }
    assert tags == {r.run_id: str(r.run_id in {p.run_id for p in front}).lower() for r in runs}


def test_pareto_table(store_uri: str, sweeps: dict[str, dict[str, str]]) -> None:
    front = pareto_front(experiment=EXPERIMENT, sweep_id="front-s1", tracking_uri=store_uri)
    lines = pareto_table(front).splitlines()
    assert lines[0].split() == ["#", "run_id", "strategy", "val_acc", "(max)", "co2_kg", "(min)"]
    assert len(lines) == 1 + len(front)
    assert lines[-1].split() == ["4", sweeps["s1"]["d"], "random", "0.7", "0.5"]


def test_plot_front_writes_a_png(
    store_uri: str, sweeps: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    import matplotlib.image

    records = query_runs(store_uri, EXPERIMENT, sweep_id="front-s1")
    records += [RunRecord("x", "FINISHED", metrics={"val_acc": 0.6}, tags={"strategy": "full"})]
    path = plot_front(
        records, [("val_acc", "max"), ("co2_kg", "min")], str(tmp_path / "a" / "f.png")
    )
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.shape[:2] == (600, 840)  # 7 x 5 inches at 120 dpi
    assert image[..., :3].std() > 0.05  # not a blank canvas
    with pytest.raises(ConfigError, match="needs two objectives"):
        plot_front(records, [("val_acc", "max")], str(tmp_path / "g.png"))


def test_a_newer_sweep_without_a_finished_trial_does_not_hide_the_last_front(
    store_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from graft_hpo.cli import main

    good = _sweep(store_uri, "spoil-good", {"x": (0.9, 1.0, 1.0, "FINISHED", {})}, None, "spoil")
    time.sleep(0.01)
    _sweep(store_uri, "spoil-failed", {"y": (0.99, 0.1, 1.0, "FAILED", {})}, None, "spoil")
    # the latest sweep with a front is read, and named
    front = pareto_front(experiment="spoil", tracking_uri=store_uri)
    assert [p.run_id for p in front] == [good["x"]]
    assert main(["pareto", "--experiment", "spoil", "--tracking-uri", store_uri, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["sweep_id"] == "spoil-good"
    assert data["objectives"] == [["val_acc", "max"], ["co2_kg", "min"]]
    assert [p["run_id"] for p in data["points"]] == [good["x"]]
    assert main(["pareto", "--experiment", "spoil", "--tracking-uri", store_uri]) == 0
    assert capsys.readouterr().out.startswith("sweep spoil-good: Pareto front (val_acc max vs")
    # --sweep-id still chooses the failed one: an empty front, named
    argv = ["pareto", "--sweep-id", "spoil-failed", "--tracking-uri", store_uri, "--json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["sweep_id"], data["points"]) == ("spoil-failed", [])
    argv = ["select", "--experiment", "spoil", "--tracking-uri", store_uri, "--policy", "knee"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"run {good['x']} (knee) of sweep spoil-good")
    # the printed retrain command finds the run: it names the store select read
    assert f"retrain: graft-hpo retrain {good['x']} --tracking-uri {store_uri} --register" in out


def test_a_newer_sweep_of_early_stops_only_does_not_hide_the_last_front(store_uri: str) -> None:
    # an MO-ASHA sweep interrupted (or still running) after its first stops: early-stopped
    # trials end FINISHED, tagged, and are never on a front
    good = _sweep(store_uri, "asha-good", {"x": (0.9, 1.0, 1.0, "FINISHED", {})}, None, "asha")
    time.sleep(0.01)
    stopped = {"y": (0.5, 0.1, 1.0, "FINISHED", {"early_stopped": "true"})}
    _sweep(store_uri, "asha-stopped", stopped, None, "asha")
    front = pareto_front(experiment="asha", tracking_uri=store_uri)
    assert [p.run_id for p in front] == [good["x"]]
    assert sweep_objectives(experiment="asha", tracking_uri=store_uri)[1] == "asha-good"
    # a front candidate behind a first page of early stops is found too
    many = {"x": (0.9, 1.0, 1.0, "FINISHED", {})}
    many |= {f"s{i}": (0.5, 0.1, 1.0, "FINISHED", {"early_stopped": "true"}) for i in range(50)}
    later = _sweep(store_uri, "asha-many", many, None, "asha")
    time.sleep(0.01)
    _sweep(store_uri, "asha-stopped-again", stopped, None, "asha")
    front = pareto_front(experiment="asha", tracking_uri=store_uri)
    assert [p.run_id for p in front] == [later["x"]]


def test_an_objective_no_trial_logged_is_refused_with_the_closest_name(
    store_uri: str, sweeps: dict[str, dict[str, str]]
) -> None:
    # a typo gave an empty front and a warning; select then said "the front is empty"
    with pytest.raises(
        ConfigError,
        match=r"^objectives must be a metric the sweep's trials "
        r"logged; got 'val_ac' \(did you mean 'val_acc'\?\)",
    ):
        pareto_front(
            experiment=EXPERIMENT,
            sweep_id="front-s1",
            tracking_uri=store_uri,
            objectives=[("val_ac", "max"), ("co2_kg", "min")],
        )


def test_objectives_of_a_sweep_that_does_not_exist_are_refused(store_uri: str) -> None:
    # as pareto_front refuses it, not the default objectives under the typo's name
    with pytest.raises(ConfigError, match=r"^sweep_id 'no-such-sweep' not found in experiment"):
        sweep_objectives(experiment=EXPERIMENT, sweep_id="no-such-sweep", tracking_uri=store_uri)
    with pytest.raises(ConfigError, match=r"^sweep_id 'no-such-sweep' not found in experiment"):
        pareto_front(experiment=EXPERIMENT, sweep_id="no-such-sweep", tracking_uri=store_uri)


def test_cli_plot_of_a_one_objective_sweep_is_refused_before_anything_is_printed(
    store_uri: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from graft_hpo.cli import main

    trials = {"x": (0.9, 1.0, 1.0, "FINISHED", {})}
    _sweep(store_uri, "one-objective", trials, [["val_acc", "max"]], "one")
    png = tmp_path / "front.png"
    argv = ["pareto", "--experiment", "one", "--tracking-uri", store_uri, "--plot", str(png)]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and not png.exists()
    assert err.strip().splitlines() == [
        "graft-hpo pareto: error: --plot needs a sweep of two objectives; sweep one-objective "
        "has val_acc (max)"
    ]
    assert main(argv[:-2]) == 0  # the table alone is fine


def test_cli_plot_draws_the_sweeps_objectives_and_the_printed_front(
    store_uri: str,
    sweeps: dict[str, dict[str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import graft_hpo.pareto
    from graft_hpo.cli import main

    drawn: dict = {}

    def spy(records: list, objectives: list, path: str, *, front: list | None = None) -> str:
        drawn.update(objectives=objectives, front=[p.run_id for p in front or []])
        return path

    monkeypatch.setattr(graft_hpo.pareto, "plot_front", spy)
    png = str(tmp_path / "f.png")
    argv = ["pareto", "--sweep-id", "front-s2", "--tracking-uri", store_uri, "--json"]
    assert main([*argv, "--plot", png]) == 0
    data = json.loads(capsys.readouterr().out)
    # s2 optimises accuracy vs duration: the plot's axes and ringed points are the table's
    assert [tuple(o) for o in drawn["objectives"]] == [("val_acc", "max"), ("duration_s", "min")]
    assert (
        drawn["front"]
        == [p["run_id"] for p in data["points"]]
        == [sweeps["s2"][k] for k in ("a", "b", "c")]
    )


def test_cli_reads_a_store_given_as_the_folder_that_holds_it(
    store_uri: str, sweeps: dict[str, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    from graft_hpo.cli import main

    folder = Path(store_uri[len("sqlite:///") :]).parent  # like the default, ./mlruns
    argv = ["pareto", "--sweep-id", "front-s0", "--tracking-uri", str(folder), "--json"]
    assert main(argv) == 0
    assert [p["run_id"] for p in json.loads(capsys.readouterr().out)["points"]] == [
        sweeps["s0"]["only"]
    ]
