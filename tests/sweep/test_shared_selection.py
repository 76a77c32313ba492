"""A sweep that selects once: the stored ranking, its measured cost, trials on its prefixes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from graft_hpo.config import load_pipeline
from graft_hpo.exceptions import TrialFailedError
from graft_hpo.selection import Ranking
from graft_hpo.selection._base import budget_of
from graft_hpo.space import load_space
from graft_hpo.sweep import resume_sweep
from graft_hpo.sweep import run_sweep
from graft_hpo.sweep._ranking import needs_ranking
from graft_hpo.tracking import query_runs

pytestmark = [pytest.mark.ray, pytest.mark.mlflow]

SHARED = [
    "train.epochs=2",
    "train.device=cpu",
    "emissions.measure_power_secs=1",
    "selection.scope=sweep",
    "selection.warm_start_epochs=0",
    "selection.proxy_epochs=1",
    "selection.fraction=0.25",
]


def _space(tmp_path: Path, strategies: str) -> Path:
    path = tmp_path / f"space-{strategies.replace(', ', '-')}.yaml"
    path.write_text(
        "params:\n"
        "  train.lr: {type: float, low: 0.01, high: 0.1, log: true}\n"
        f"  selection.strategy: {{type: categorical, choices: [{strategies}]}}\n"
    )
    return path


def test_only_sweeps_that_may_run_shared_graft_rank(tmp_path: Path) -> None:
    config = load_pipeline("digits", SHARED)
    both = load_space(_space(tmp_path, "graft, random"))
    controls = load_space(_space(tmp_path, "random, full"))
    assert needs_ranking(config, both)
    assert not needs_ranking(config, controls)
    per_trial = load_pipeline("digits", [*SHARED, "selection.scope=trial"])
    assert not needs_ranking(per_trial, both)


def test_a_sweep_ranks_once_counts_it_and_its_trials_train_on_prefixes(
    ray_local: Path, tmp_path: Path
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    result = run_sweep(
        "digits",
        trials=3,
        overrides=[
            *SHARED,
            "tracking.experiment=shared",
            f"search.space={_space(tmp_path, 'graft')}",
        ],
        tracking_uri=uri,
        sweep_dir=tmp_path / "sweep",
        printer=None,
    )
    assert result.trials["FINISHED"] == 3
    ranking = Ranking.load(tmp_path / "sweep" / "ranking.pt")
    cost = json.loads((tmp_path / "sweep" / "ranking.json").read_text())
    assert cost["energy_kwh"] > 0 and cost["co2_kg"] > 0 and cost["duration_s"] > 0

    runs = query_runs(uri, "shared", sweep_id=result.sweep_id)
    parent = next(r for r in runs if r.run_id == result.parent_run_id)
    trials = [r for r in runs if r.run_id != result.parent_run_id]
    # the selection's own cost is on the parent run, and in the sweep's totals
    assert parent.metrics["shared_selection_energy_kwh"] == pytest.approx(cost["energy_kwh"])
    trial_energy = sum(r.metrics["energy_kwh"] for r in trials)
    assert result.totals["sweep_energy_kwh"] == pytest.approx(trial_energy + cost["energy_kwh"])
    assert result.totals["sweep_shared_selection_energy_kwh"] == pytest.approx(cost["energy_kwh"])
    n = len(ranking)
    for r in trials:  # no warm-up, no round of their own: the budget's prefix from epoch 0
        assert r.metrics["fraction_effective"] == pytest.approx(budget_of(0.25, n) / n)
        assert r.metrics["selection_s"] < 0.1 * r.metrics["duration_s"]

    # resuming reuses the stored ranking: it is never computed again
    before = (tmp_path / "sweep" / "ranking.pt").stat().st_mtime_ns
    resumed = resume_sweep(tmp_path / "sweep", printer=None)
    assert resumed.trials["FINISHED"] == 3
    assert (tmp_path / "sweep" / "ranking.pt").stat().st_mtime_ns == before
    assert torch.equal(Ranking.load(tmp_path / "sweep" / "ranking.pt").order, ranking.order)


def test_a_failing_shared_selection_fails_the_sweep_before_anything_is_written(
    ray_local: Path, tmp_path: Path
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    with pytest.raises(TrialFailedError, match=r"shared selection .* failed, so no trial"):
        run_sweep(
            "digits",
            trials=2,
            # the proxy trains with the pipeline's own lr: this one makes its loss infinite
            overrides=[*SHARED, "train.lr=1e12", "tracking.experiment=shared-nan"],
            tracking_uri=uri,
            sweep_dir=tmp_path / "sweep",
            printer=None,
        )
    assert not (tmp_path / "sweep").exists()
    assert not (tmp_path / "mlruns").exists()  # not even the tracking store was created
