"""The sweep folder: one object knows its files' names and formats; its writes are atomic; the
plan carries the shared selection's cost, and a plan written before it did still reads."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest

import graft_hpo
from graft_hpo import ConfigError
from graft_hpo import load_pipeline
from graft_hpo.space import load_space
from graft_hpo.sweep._folder import SweepFolder
from graft_hpo.sweep._plan import SweepPlan
from graft_hpo.sweep._plan import read_plan
from graft_hpo.sweep._plan import write_plan

# the names sweeps on users' disks have: never to change
NAMES = {
    "PLAN": "sweep.json",
    "SESSIONS": "sessions.json",
    "STOP": "stop.json",
    "RANKING": "ranking.pt",
    "RANKING_COST": "ranking.json",
    "RUNGS_LOG": "rungs.jsonl",
    "OLD_RUNGS": "rungs.json",
    "OPTUNA_DB": "optuna.db",
}


def _plan(folder: Path, **kwargs: object) -> SweepPlan:
    config = load_pipeline("digits")
    assert config.search.space is not None
    fields: dict[str, object] = {
        "config": config,
        "space": load_space(config.search.space),
        "sweep_id": "s1",
        "sweep_dir": str(folder),
        "tracking_uri": f"sqlite:///{folder / 'mlflow.db'}",
        "experiment": "e",
        "parent_run_id": "p",
        "trials": 3,
        "address": None,
        **kwargs,
    }
    return SweepPlan(**fields)  # type: ignore[arg-type]


def test_the_folder_knows_its_files_by_their_names_on_disk() -> None:
    assert {name: getattr(SweepFolder, name) for name in NAMES} == NAMES
    assert SweepFolder("/s/x").optuna_db == Path("/s/x/optuna.db")


def _is_docstring(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    parent = parents.get(parents.get(node, node))
    body = getattr(parent, "body", None)
    return isinstance(body, list) and isinstance(body[0], ast.Expr) and body[0].value is node


def test_no_other_module_names_a_file_of_the_sweep_folder() -> None:
    """Docstrings may say which file holds what; code reaches the files through SweepFolder."""
    package = Path(graft_hpo.__file__).parent
    found = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "_folder.py" and path.parent.name == "sweep":
            continue
        tree = ast.parse(path.read_text())
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            if _is_docstring(node, parents):
                continue
            found += [f"{path.name}:{node.lineno} {n}" for n in NAMES.values() if n in node.value]
    assert found == []


def test_writes_are_atomic_a_failed_write_leaves_the_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = SweepFolder(tmp_path)
    folder.write_stop("first")
    folder.write_stop("second")  # the first reason recorded stays
    assert folder.read_stop() == "first"
    plan = _plan(tmp_path)
    write_plan(plan)
    before = (tmp_path / "sweep.json").read_text()

    def killed(self: Path, target: object) -> Path:
        raise OSError("killed before the rename")

    monkeypatch.setattr(Path, "replace", killed)
    with pytest.raises(OSError):
        write_plan(_plan(tmp_path, trials=99))
    monkeypatch.undo()
    assert (tmp_path / "sweep.json").read_text() == before
    assert read_plan(folder).trials == 3
    assert folder.read_stop() == "first"  # kept for good: a resumed sweep still says why
    assert sorted(os.listdir(tmp_path)) == ["stop.json", "sweep.json", "sweep.json.tmp"]


def test_old_rungs_json_is_read_with_the_log(tmp_path: Path) -> None:
    (tmp_path / "rungs.json").write_text(json.dumps({"2": {"old": [0.5, 5.0]}}))
    folder = SweepFolder(tmp_path)
    folder.append_rung(2, "new", [0.9, 1.0])
    folder.append_rung(6, "new", [0.95, 3.0])
    assert folder.read_rungs() == {
        2: {"old": [0.5, 5.0], "new": [0.9, 1.0]},
        6: {"new": [0.95, 3.0]},
    }


def test_the_plan_carries_the_shared_selections_cost(tmp_path: Path) -> None:
    cost = {"energy_kwh": 1e-4, "co2_kg": 3e-5, "duration_s": 2.5}
    write_plan(_plan(tmp_path, ranking_cost=cost))
    (tmp_path / "ranking.json").write_text("{not json")  # not read: the plan has it
    assert read_plan(SweepFolder(tmp_path)).ranking_cost == cost


def test_a_plan_written_before_it_carried_the_cost_reads_it_from_the_folder(
    tmp_path: Path,
) -> None:
    write_plan(_plan(tmp_path))
    data = json.loads((tmp_path / "sweep.json").read_text())
    del data["ranking_cost"]  # sweep.json as sweeps before this wrote it
    (tmp_path / "sweep.json").write_text(json.dumps(data))
    assert read_plan(SweepFolder(tmp_path)).ranking_cost == {}  # no shared selection
    (tmp_path / "ranking.json").write_text(json.dumps({"energy_kwh": 2e-4, "co2_kg": 1e-5}))
    plan = read_plan(SweepFolder(tmp_path))
    assert plan.ranking_cost == {"energy_kwh": 2e-4, "co2_kg": 1e-5}
    assert plan.config == _plan(tmp_path).config and plan.trials == 3


def test_a_folder_is_found_by_itself_or_as_its_pipelines_latest_sweep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="no sweep of pipeline 'digits'"):
        SweepFolder.find("digits")
    old, new = SweepFolder.default("old"), SweepFolder.default("new")
    write_plan(_plan(old.path, sweep_id="old"))
    write_plan(_plan(new.path, sweep_id="new"))
    os.utime(old.path / "sweep.json", (1, 1))
    assert SweepFolder.find("digits").path == new.path
    assert SweepFolder.find(old.path).path == old.path
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"holds no sweep\.json: not a sweep folder"):
        SweepFolder.find(tmp_path / "empty")
    with pytest.raises(
        ConfigError, match=r"'mlruns/sweeps/gone' does not exist: expected a sweep"
    ):
        SweepFolder.find("mlruns/sweeps/gone")  # a path, not read as a pipeline's name
    with pytest.raises(ConfigError, match=r"'gone.yaml' does not exist: expected a sweep"):
        SweepFolder.find("gone.yaml")  # a YAML file's name is a path too (is_bundled_name)
    with pytest.raises(ConfigError, match=r"holds no sweep\.json"):
        read_plan(SweepFolder(tmp_path / "empty"))
    (tmp_path / "empty" / "sweep.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"sweep\.json is not a readable graft-hpo sweep plan"):
        read_plan(SweepFolder(tmp_path / "empty"))


def test_the_name_an_old_sweeps_tune_state_calls_still_records_the_stop(tmp_path: Path) -> None:
    """The ``tuner.pkl`` of a sweep saved before SweepFolder holds a driver callback that calls
    ``graft_hpo.sweep._folder.write_stop`` by name: without it the sweep cannot be resumed."""
    from graft_hpo.sweep import _folder

    _folder.write_stop(str(tmp_path), "trial t1 failed (search.fail_fast)")
    assert SweepFolder(tmp_path).read_stop() == "trial t1 failed (search.fail_fast)"


def test_resume_goes_on_in_the_cluster_it_is_told_and_remembers_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep's plan names its cluster; after the head restarted elsewhere, only editing
    sweep.json could resume it (the error named a --address resume did not have)."""
    from graft_hpo import sweep

    write_plan(_plan(tmp_path, address="127.0.0.1:6390"))
    joined: list[str | None] = []
    monkeypatch.setattr(sweep, "start_ray", lambda config, address, quiet: joined.append(address))
    monkeypatch.setattr(sweep, "reopen_parent", lambda plan: None)
    monkeypatch.setattr(sweep, "mark_interrupted", lambda plan, reason: None)
    monkeypatch.setattr(sweep, "_run", lambda plan, **kw: plan.address)
    assert sweep.resume_sweep(tmp_path) == "127.0.0.1:6390"  # the sweep's own
    assert sweep.resume_sweep(tmp_path, address="10.0.0.5:6379") == "10.0.0.5:6379"
    assert joined == ["127.0.0.1:6390", "10.0.0.5:6379"]
    assert read_plan(SweepFolder(tmp_path)).address == "10.0.0.5:6379"  # from now on
    from graft_hpo.cli import build_parser

    assert build_parser().parse_args(["resume", "x", "--address", "auto"]).address == "auto"
