"""The pure helpers behind benchmarks/fidelity_bench.py (no model is trained here)."""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
from concurrent.futures import Future

import numpy as np
import pytest
import torch

from benchmarks import fidelity_bench
from benchmarks._machine import json_safe
from benchmarks.fidelity_bench import ARMS
from benchmarks.fidelity_bench import CONTROLS
from benchmarks.fidelity_bench import MODEL_PARAMS
from benchmarks.fidelity_bench import SPACE
from benchmarks.fidelity_bench import arm_uses_ranking
from benchmarks.fidelity_bench import assemble
from benchmarks.fidelity_bench import budget_key
from benchmarks.fidelity_bench import fidelity
from benchmarks.fidelity_bench import markdown
from benchmarks.fidelity_bench import rank_correlations
from benchmarks.fidelity_bench import run_overrides
from benchmarks.fidelity_bench import sample_configs
from benchmarks.fidelity_bench import top1_regret
from graft_hpo.config import load_pipeline
from graft_hpo.selection import Ranking
from graft_hpo.space import load_space


@pytest.fixture(scope="module")
def specs():
    space = {s.name: s for s in load_space(SPACE).params}
    return [space[n] for n in MODEL_PARAMS]


# ---------------------------------------------------------------------------------------------
# sampling


def test_sampled_configs_are_in_range_and_on_the_grid(specs) -> None:
    configs = sample_configs(specs, 200, seed=0)
    assert len(configs) == 200
    for c in configs:
        assert list(c) == list(MODEL_PARAMS)
        assert 1e-3 <= c["train.lr"] <= 0.3
        assert 1e-5 <= c["train.weight_decay"] <= 1e-2
        assert c["train.batch_size"] in (64, 128)
        assert c["model.options.width"] in (16, 32, 48)
        assert isinstance(c["model.options.width"], int)
    # every choice and grid point turns up
    assert {c["train.batch_size"] for c in configs} == {64, 128}
    assert {c["model.options.width"] for c in configs} == {16, 32, 48}


def test_sampling_is_log_uniform_where_the_space_says_log(specs) -> None:
    lrs = [c["train.lr"] for c in sample_configs(specs, 2000, seed=1)]
    # log-uniform on [1e-3, 0.3]: median near the geometric mean 0.0173 (uniform: 0.15)
    assert 0.01 < statistics.median(lrs) < 0.03
    assert sum(lr < 0.01 for lr in lrs) / len(lrs) == pytest.approx(0.40, abs=0.05)


def test_sampling_is_reproducible_for_a_seed(specs) -> None:
    assert sample_configs(specs, 16, seed=0) == sample_configs(specs, 16, seed=0)
    assert sample_configs(specs, 16, seed=0) != sample_configs(specs, 16, seed=1)
    # the first configurations do not depend on how many are drawn
    assert sample_configs(specs, 4, seed=3) == sample_configs(specs, 16, seed=3)[:4]


def test_overrides_of_a_sampled_config_load_in_the_pipeline(specs) -> None:
    params = sample_configs(specs, 1, seed=0)[0]
    subset = load_pipeline("mnist", overrides=run_overrides(params, ARMS["random"], 0.05, []))
    assert subset.train.lr == params["train.lr"]
    assert subset.train.weight_decay == params["train.weight_decay"]
    assert subset.train.batch_size == params["train.batch_size"]
    assert subset.model.options["width"] == params["model.options.width"]
    assert (subset.selection.strategy, subset.selection.fraction) == ("random", 0.05)
    extra = ["emissions.enabled=false"]
    full = load_pipeline(
        "mnist", overrides=run_overrides(params, ["selection.strategy=full"], None, extra)
    )
    assert full.selection.strategy == "full"
    assert full.emissions.enabled is False


def test_only_the_sweep_scoped_arm_takes_the_shared_ranking() -> None:
    assert {a: arm_uses_ranking(a) for a in ARMS} == {
        "graft": False,
        "random": False,
        "graft-sweep": True,
        "random-nowarm": False,
    }


def test_each_graft_arm_is_paired_with_a_random_arm_of_the_same_warm_up() -> None:
    assert set(CONTROLS) | set(CONTROLS.values()) == set(ARMS)
    for arm, control in CONTROLS.items():
        graft = load_pipeline("mnist", overrides=ARMS[arm]).selection
        rand = load_pipeline("mnist", overrides=ARMS[control]).selection
        assert (graft.strategy, rand.strategy) == ("graft", "random")
        assert graft.warm_start_epochs == rand.warm_start_epochs
    # the pipeline warms up one epoch; the sweep-scoped pair does not
    assert load_pipeline("mnist", overrides=ARMS["graft"]).selection.warm_start_epochs == 1
    assert load_pipeline("mnist", overrides=ARMS["graft-sweep"]).selection.warm_start_epochs == 0


def test_budget_keys() -> None:
    assert [budget_key(b) for b in (0.05, 0.1, 0.2, 1.0)] == ["0.05", "0.1", "0.2", "1"]


# ---------------------------------------------------------------------------------------------
# correlations and regret


def _brute_kendall_b(x: list[float], y: list[float]) -> float:
    conc = disc = tx = ty = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        if dx == 0 and dy == 0:
            continue
        if dx == 0:
            tx += 1
        elif dy == 0:
            ty += 1
        elif dx == dy:
            conc += 1
        else:
            disc += 1
    return (conc - disc) / math.sqrt((conc + disc + tx) * (conc + disc + ty))


def _avg_ranks(v: list[float]) -> list[float]:
    return [sum(u < w for u in v) + (sum(u == w for u in v) + 1) / 2 for w in v]


def _brute_spearman(x: list[float], y: list[float]) -> float:
    return float(np.corrcoef(_avg_ranks(x), _avg_ranks(y))[0, 1])


def test_reversed_order_gives_minus_one_and_same_order_plus_one() -> None:
    full = [0.90, 0.95, 0.80, 0.97]
    assert rank_correlations(full, [-f for f in full]) == pytest.approx((-1.0, -1.0))
    # a monotone transform keeps the ranking
    assert rank_correlations(full, [f**3 - 0.5 for f in full]) == pytest.approx((1.0, 1.0))


@pytest.mark.parametrize("seed", range(5))
def test_correlations_match_brute_force_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # coarse values: many ties, as val_acc on 1,000 images has
    full = [float(v) for v in rng.integers(0, 5, size=12)]
    subset = [float(v) for v in rng.integers(0, 4, size=12)]
    kendall, spearman = rank_correlations(full, subset)
    assert kendall == pytest.approx(_brute_kendall_b(full, subset))
    assert spearman == pytest.approx(_brute_spearman(full, subset))


def test_constant_column_has_no_correlation() -> None:
    k, s = rank_correlations([0.1, 0.2, 0.3], [0.5, 0.5, 0.5])
    assert math.isnan(k) and math.isnan(s)


def test_regret_of_perfect_and_reversed_rankings() -> None:
    full = [0.90, 0.95, 0.80, 0.97]
    assert top1_regret(full, full) == 0.0
    assert top1_regret(full, [f - 0.2 for f in full]) == 0.0
    assert top1_regret(full, [-f for f in full]) == pytest.approx(0.97 - 0.80)


def test_regret_of_a_tie_for_first_is_the_mean_over_the_tie() -> None:
    full = [0.90, 0.95, 0.80, 0.97]
    subset = [0.5, 0.7, 0.7, 0.7]  # configs 1, 2, 3 tie for first
    assert top1_regret(full, subset) == pytest.approx(0.97 - (0.95 + 0.80 + 0.97) / 3)


def test_fidelity_skips_failed_runs() -> None:
    full = [0.90, 0.95, None, 0.97, 0.70]
    subset = [0.60, 0.65, 0.99, None, 0.50]
    out = fidelity(full, subset)
    assert out["n"] == 3  # configs 0, 1 and 4
    assert out["kendall"] == pytest.approx(1.0)
    # among the runs kept, the subset's best (config 1) is also full's best
    assert out["regret"] == pytest.approx(0.0)
    assert out["regret_pts"] == pytest.approx(100 * out["regret"])
    assert fidelity([None], [0.5])["n"] == 0


# ---------------------------------------------------------------------------------------------
# assembly and report


def _accs() -> dict[str, list[float | None]]:
    full = [0.90, 0.95, 0.80, 0.97]
    return {
        "full": full,
        "0.05/graft": [0.5, 0.6, 0.4, 0.7],  # perfect
        "0.05/random": [0.7, 0.6, 0.5, 0.4],  # tau -1/3
        "0.1/graft": [0.4, 0.5, 0.7, 0.6],  # tau 0: graft below random here
        "0.1/random": [0.6, 0.7, 0.5, 0.8],  # perfect
        # graft-sweep beats random (tau -1/3) but not its own control (perfect) at 0.05
        "0.05/graft-sweep": [0.5, 0.6, 0.45, 0.55],  # tau 2/3 (configs 1, 3 swapped)
        "0.05/random-nowarm": [0.1, 0.2, 0.0, 0.3],  # perfect
        "0.1/graft-sweep": [0.6, 0.6, 0.6, 0.6],  # constant: tau undefined
        "0.1/random-nowarm": [0.3, 0.2, 0.1, 0.0],  # tau -1/3
    }


def test_assemble_keys_metrics_and_verdict() -> None:
    params = [{"train.lr": 0.01 * (i + 1)} for i in range(4)]
    out = assemble(params, _accs(), [0.05, 0.1], ["graft", "random"])
    assert list(out["budgets"]) == ["0.05", "0.1"]
    cell = out["budgets"]["0.05"]["graft"]
    assert {"kendall", "spearman", "regret"} <= set(cell)
    assert cell["kendall"] == pytest.approx(1.0) and cell["regret"] == pytest.approx(0.0)
    assert out["budgets"]["0.05"]["random"]["kendall"] == pytest.approx(-1 / 3)
    assert out["budgets"]["0.1"]["graft"]["regret"] == pytest.approx(0.97 - 0.80)
    assert out["graft_ge_control"] == {
        "graft": {"control": "random", "per_budget": {"0.05": True, "0.1": False}, "all": False}
    }
    assert out["configs"][2] == {
        "index": 2,
        "params": {"train.lr": 0.03},
        "full": 0.80,
        "0.05": {"graft": 0.4, "random": 0.5},
        "0.1": {"graft": 0.7, "random": 0.5},
    }
    # one arm, or a graft arm without its control: no verdict
    assert assemble(params, _accs(), [0.1], ["graft"])["graft_ge_control"] == {}
    unpaired = assemble(params, _accs(), [0.1], ["graft-sweep", "random"])
    assert unpaired["graft_ge_control"] == {}


def test_each_graft_arm_is_judged_against_its_own_control() -> None:
    params = [{"train.lr": 0.01 * (i + 1)} for i in range(4)]
    out = assemble(params, _accs(), [0.05, 0.1], list(ARMS))
    sweep = out["budgets"]["0.05"]["graft-sweep"]
    assert sweep["kendall"] == pytest.approx(2 / 3)
    # vs random (tau -1/3) it would be ahead; vs random-nowarm (perfect) it is behind
    assert out["graft_ge_control"]["graft-sweep"] == {
        "control": "random-nowarm",
        "per_budget": {"0.05": False, "0.1": None},  # 0.1: a constant column, tau undefined
        "all": False,
    }
    assert out["graft_ge_control"]["graft"]["per_budget"] == {"0.05": True, "0.1": False}
    # every budget at least the control's: all
    only = assemble(params, _accs(), [0.05], ["graft", "random"])["graft_ge_control"]
    assert only["graft"]["all"] is True


def test_report_renders_the_table_and_the_verdict() -> None:
    params = [{"train.lr": 0.01 * (i + 1)} for i in range(4)]
    report = {
        "machine": {"cpu": "cpu", "logical_cpus": 2, "torch": "2", "python": "3.11"},
        "args": {"workers": 2, "configs": 4, "seed": 0, "epochs": None},
        "command": "python benchmarks/fidelity_bench.py",
        "wall_s": 12.0,
        "failed": [],
        "git": {"head": "0123456789abcdef", "dirty": []},
        **assemble(params, _accs(), [0.05, 0.1], list(ARMS)),
        "ranking": {"arms": ["graft-sweep"], "wall_s": 3.25, "stats": {"proxy_epochs": 2.0}},
    }
    report["machine"]["load_avg_1min_at_start"] = None
    text = markdown(report)
    assert "| 0.05 | graft | +1.000 | +1.000 | 0.0 |" in text
    assert "| 0.1 | graft | +0.000 |" in text and "| 17.0 |" in text
    assert "| 0.1 | graft-sweep | n/a | n/a |" in text
    assert "graft's Kendall >= random's at every budget: **no** (0.05: yes, 0.1: no)." in text
    assert (
        "graft-sweep's Kendall >= random-nowarm's at every budget: **no** "
        "(0.05: no, 0.1: undefined)."
    ) in text
    assert "Shared ranking (graft-sweep)" in text and "2 full-data epochs" in text
    assert "3.2 s" in text
    # no sweep-scoped arm: no ranking line
    assert "Shared ranking" not in markdown({**report, "ranking": None})
    # NaN becomes null: the JSON line parses with a strict reader
    report["budgets"]["0.1"]["graft"]["kendall"] = math.nan
    line = json.dumps(json_safe(report), allow_nan=False)
    assert json.loads(line)["budgets"]["0.1"]["graft"]["kendall"] is None


# ---------------------------------------------------------------------------------------------
# the shared ranking reaches the sweep-scoped arm only (no training: the pool runs inline)


class _InlinePool:
    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __enter__(self) -> _InlinePool:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def submit(self, fn, *args):  # type: ignore[no-untyped-def]
        future: Future = Future()
        future.set_result(fn(*args))
        return future


@pytest.fixture
def torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_one_ranking_of_the_base_pipeline_goes_to_the_sweep_arm_only(
    monkeypatch, torch_threads
) -> None:
    ranking = Ranking(torch.arange(4), torch.full((4,), -math.inf), {"proxy_epochs": 2.0})
    proxies, trainings = [], []

    def fake_proxy(config, bundle=None):  # type: ignore[no-untyped-def]
        proxies.append(config)
        return ranking

    def fake_train(overrides, shared=None):  # type: ignore[no-untyped-def]
        trainings.append((overrides, shared))
        return {"val_acc": 0.5, "status": "FINISHED", "error": None, "wall_s": 0.0}

    monkeypatch.setattr("graft_hpo.proxy.proxy_ranking", fake_proxy)
    monkeypatch.setattr(fidelity_bench, "train_one", fake_train)
    monkeypatch.setattr(fidelity_bench, "ProcessPoolExecutor", _InlinePool)
    monkeypatch.setattr(fidelity_bench, "_git_state", lambda: {"head": "", "dirty": []})
    args = argparse.Namespace(
        configs=3, seed=0, budgets=[0.05, 0.1], arms=list(ARMS), epochs=3,
        emissions=False, set=[], workers=1,
    )  # fmt: skip
    out = fidelity_bench.run_all(args)

    assert len(proxies) == 1  # once, before the trainings
    base = load_pipeline("mnist")
    proxy = proxies[0]
    assert (proxy.selection.strategy, proxy.selection.scope) == ("graft", "sweep")
    assert (proxy.train.lr, proxy.train.batch_size) == (base.train.lr, base.train.batch_size)
    assert proxy.model.options == base.model.options
    assert (proxy.train.device, proxy.emissions.enabled) == ("cpu", False)
    assert len(trainings) == 3 * (1 + 2 * len(ARMS))
    for overrides, shared in trainings:
        sweep = "selection.scope=sweep" in overrides
        assert shared is (ranking if sweep else None)
    assert sum(shared is ranking for _, shared in trainings) == 3 * 2  # configs x budgets
    assert out["ranking"]["arms"] == ["graft-sweep"]
    assert out["ranking"]["stats"] == {"proxy_epochs": 2.0}
    # no sweep-scoped arm: no proxy is trained
    proxies.clear()
    out = fidelity_bench.run_all(argparse.Namespace(**{**vars(args), "arms": ["graft", "random"]}))
    assert proxies == [] and out["ranking"] is None
