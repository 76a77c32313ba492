"""What our sweep driver costs per trial as a sweep grows: 50, 500 and 2,000 trials.

Trials that train nothing. The driver's own objects, built as ``run_sweep`` builds them (the
budget gate around Optuna's searcher, the scheduler, the driver's callback with its console),
are called in the order Ray Tune calls them, trial after trial, one at a time, against a real
MLflow store and a real Optuna study (sqlite, as a sweep has them): the gate's ``suggest``,
the callback's ``on_trial_start``, then per epoch the scheduler's decision, the gate's and the
callback's ``on_trial_result``, and at the end (or when MO-ASHA stops the trial) the gate's and
the callback's ``on_trial_complete``. The "trial" in between does what a worker does to the
store (a nested run, its metrics per epoch, its end), untimed, plus the lookup of its earlier
runs every trial makes at its start (``_earlier_run``, timed apart: it runs in the worker).

Timed per trial, each call's own time (what it calls that is timed elsewhere is subtracted):
``gate`` (budget gate and Ray's OptunaSearch wrapper), ``scheduler`` (MO-ASHA), ``callbacks``
(console, closing early-stopped runs), i.e. our driver; ``optuna`` (study ask/tell, trial
suggest and attributes: Optuna's storage) and ``sampler`` (the sampler's own calls), reported
apart. Averages over the ``--window`` trials that end at each size. In those windows every
other trial uses TPE (multivariate, constant liar, as ``search.sampler: tpe``) instead of the
random sampler the rest of the sweep uses, so both samplers' cost is measured at each size.
Outside the windows the gate's ``suggest`` and the trial's lookup are skipped (the searcher is
asked directly): the store and the study grow the same, and the old code's quadratic reads
do not make the run take an hour. Ray Tune's own controller loop is not in these numbers.

``--before REV`` runs the same measurement on the package as it was at ``REV`` (extracted with
``git archive``), side by side. The sweep has a CO2 budget it never reaches, so the gate counts.

    PYTHONPATH=. .venv/bin/python -m benchmarks.driver_bench --before 5aa5b61 --json \\
        > benchmarks/results/driver.md
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from benchmarks._cli import add_json_line
from benchmarks._machine import ROOT
from benchmarks._machine import check_revision
from benchmarks._machine import extract_package
from benchmarks._machine import print_report
from benchmarks._machine import provenance
from benchmarks._machine import run_importing
from benchmarks._machine import run_report
from benchmarks._tables import head
from benchmarks._tables import num

Json = dict[str, Any]
DRIVER = ("gate", "scheduler", "callbacks")  # our driver's code, in the driver process
APART = ("lookup", "optuna", "sampler")  # the worker's lookup; Optuna's storage and sampler
GOAL_RATIO = 1.5  # issue 21: the driver's cost per trial at 2,000 trials within 1.5x of at 50
EPOCHS = 3
OVERRIDES = [
    "search.scheduler={type: moasha, grace_period: 1, reduction_factor: 3}",
    f"train.epochs={EPOCHS}",
    "search.co2_budget_kg=1000",  # never reached: the gate checks it before every trial
    "search.sampler=random",
    "search.max_concurrent=1",
    "tracking.experiment=driver-bench",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 500, 2000])
    parser.add_argument("--window", type=int, default=24, help="trials averaged per size")
    parser.add_argument("--pipeline", default="digits")
    parser.add_argument("--before", default=None, help="also measure the package at this rev")
    parser.add_argument("--measure", type=Path, default=None, help=argparse.SUPPRESS)
    add_json_line(parser)
    args = parser.parse_args(argv)
    check_revision(parser, args.before)
    if args.measure is not None:  # one side, in its own process: write its numbers there
        args.measure.write_text(json.dumps(measure(args)))
        return 0
    return print_report(args, run_report(args, _run_all), markdown)


def _run_all(args: argparse.Namespace) -> Json:
    sides: Json = {}
    with tempfile.TemporaryDirectory(prefix="driver-bench-") as tmp:
        codes = {"after": ROOT}
        if args.before:
            codes = {"before": extract_package(args.before, Path(tmp) / "before"), **codes}
        for side, code in codes.items():
            sides[side] = _measure_in(code, args, Path(tmp) / f"{side}.json")
    return {"sides": sides, "before_rev": args.before}


def _measure_in(code: Path, args: argparse.Namespace, out: Path) -> Json:
    """One side measured in a fresh process importing ``graft_hpo`` from ``code``."""
    command = [sys.executable, "-m", "benchmarks.driver_bench", "--measure", str(out)]
    command += ["--sizes", *map(str, args.sizes), "--window", str(args.window)]
    command += ["--pipeline", args.pipeline]
    run_importing(code, command)
    result: Json = json.loads(out.read_text())
    return result


# ---- one side: the driver's objects, called as Tune calls them


class Clock:
    """Each timed call's own time, per trial and bucket: what it calls that is timed too is
    credited to that call's bucket instead."""

    def __init__(self) -> None:
        self.trial = 0
        self.spent: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self._inner: list[list[float]] = []

    def wrap(self, fn: Callable[..., Any], bucket: str) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            inner = [0.0]
            self._inner.append(inner)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                self._inner.pop()
                self.spent[self.trial][bucket] += elapsed - inner[0]
                if self._inner:
                    self._inner[-1][0] += elapsed

        return timed


def measure(args: argparse.Namespace) -> Json:
    """Run ``max(sizes)`` trials through the driver; the per-trial cost in each window."""
    import graft_hpo

    clock = Clock()
    patched = _time_optuna(clock)
    try:
        with tempfile.TemporaryDirectory(prefix="driver-bench-") as tmp:
            driver = _driver(args.pipeline, Path(tmp), clock)
            windows = {n: range(max(1, n - args.window + 1), n + 1) for n in args.sizes}
            measured = {i for window in windows.values() for i in window}
            start = time.perf_counter()
            for i in range(1, max(args.sizes) + 1):
                clock.trial = i
                tpe = i in measured and i % 2 == 1
                driver.study.sampler = driver.tpe if tpe else driver.random
                # the first trial goes through the gate too: its one read of the store
                _trial(driver, i, measured=i in measured or i == 1)
            wall_s = time.perf_counter() - start
    finally:
        for owner, name, original in patched:
            setattr(owner, name, original)
    rows = [_window_row(n, window, clock) for n, window in windows.items()]
    package = str(Path(graft_hpo.__file__).parent)
    return {"package": package, "wall_s": wall_s, "rows": rows}


def _time_optuna(clock: Clock) -> list[tuple[Any, str, Any]]:
    """Optuna's own time: its samplers' calls, and the study's and trial's (its storage).
    Returns what was replaced, to put back."""
    import optuna

    names: list[tuple[Any, str, str]] = [
        (cls, name, "sampler")
        for cls in (optuna.samplers.RandomSampler, optuna.samplers.TPESampler)
        for name in (
            "infer_relative_search_space",
            "sample_relative",
            "sample_independent",
            "before_trial",
            "after_trial",
        )
    ]
    names += [(optuna.Study, name, "optuna") for name in ("ask", "tell")]
    names += [(optuna.Trial, name, "optuna") for name in ("_suggest", "set_user_attr")]
    patched = []
    for owner, name, bucket in names:
        original = owner.__dict__.get(name, getattr(owner, name))
        patched.append((owner, name, original))
        setattr(owner, name, clock.wrap(getattr(owner, name), bucket))
    return patched


def _driver(pipeline: str, tmp: Path, clock: Clock) -> SimpleNamespace:
    """The sweep's plan, parent run and driver objects, their calls timed."""
    import optuna

    from graft_hpo import load_pipeline
    from graft_hpo.sweep import check_sweep
    from graft_hpo.sweep._console import SweepConsole
    from graft_hpo.sweep._driver import _callback
    from graft_hpo.sweep._plan import SweepPlan
    from graft_hpo.sweep._search import scheduler
    from graft_hpo.sweep._search import searcher
    from graft_hpo.sweep._trainable import _earlier_run
    from graft_hpo.tracking import TAG_ROLE
    from graft_hpo.tracking import TAG_SWEEP_ID
    from graft_hpo.tracking import RunLogger

    config = load_pipeline(pipeline, OVERRIDES)
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    parent = RunLogger.start(uri, "driver-bench", tags={TAG_ROLE: "sweep", TAG_SWEEP_ID: "bench"})
    plan = SweepPlan(
        config=config,
        space=check_sweep(config),
        sweep_id="bench",
        sweep_dir=str(tmp),
        tracking_uri=uri,
        experiment="driver-bench",
        parent_run_id=parent.run_id,
        trials=100_000,
        address=None,
    )
    gate = searcher(plan)
    for name in ("suggest", "on_trial_result", "on_trial_complete"):
        setattr(gate, name, clock.wrap(getattr(gate, name), "gate"))
    sched = scheduler(config, str(tmp))
    sched.on_trial_result = clock.wrap(sched.on_trial_result, "scheduler")
    console = SweepConsole(plan.objectives, plan.trials, lambda _: None)
    sessions = getattr(sys.modules[_callback.__module__], "_SESSIONS", None)
    if sessions is None:  # --before a commit whose callback held its console (65287bb)
        callback = _callback(plan, console)
    else:  # the callback finds the running session's plan and console by the sweep id
        sessions[plan.sweep_id] = (plan, console)
        callback = _callback(plan.sweep_id)
    for name in ("on_trial_start", "on_trial_result", "on_trial_complete"):
        setattr(callback, name, clock.wrap(getattr(callback, name), "callbacks"))
    return SimpleNamespace(
        plan=plan,
        gate=gate,
        scheduler=sched,
        callback=callback,
        lookup=clock.wrap(_earlier_run, "lookup"),
        study=gate.searcher._ot_study,
        random=optuna.samplers.RandomSampler(seed=0),
        tpe=optuna.samplers.TPESampler(seed=0, multivariate=True, constant_liar=True),
        tags={TAG_ROLE: "trial", TAG_SWEEP_ID: "bench"},
        rng=__import__("random").Random(0),
    )


def _trial(driver: SimpleNamespace, i: int, *, measured: bool) -> None:
    """One trial: the driver's calls in Tune's order around a worker that trains nothing."""
    from graft_hpo._names import DONE_KEY
    from graft_hpo._names import EPOCHS_DONE
    from graft_hpo._names import TAG_RAY_TRIAL
    from graft_hpo.tracking import RunLogger

    trial_id, plan, gate = f"t{i:05d}", driver.plan, driver.gate
    config = gate.suggest(trial_id) if measured else gate.searcher.suggest(trial_id)
    trial = SimpleNamespace(trial_id=trial_id, config=config or {}, last_result={})
    driver.callback.on_trial_start(iteration=i, trials=[], trial=trial)
    if measured:
        driver.lookup(plan, trial_id)
    run = RunLogger.start(
        plan.tracking_uri,
        plan.experiment,
        parent_run_id=plan.parent_run_id,
        tags={**driver.tags, TAG_RAY_TRIAL: trial_id},
    )
    acc, co2 = driver.rng.uniform(0.5, 1.0), driver.rng.uniform(1e-7, 1e-6)
    for epoch in range(EPOCHS):
        figures = {"val_acc": acc * (epoch + 1) / EPOCHS, "co2_kg": co2 * (epoch + 1)}
        figures["energy_kwh"] = 3 * figures["co2_kg"]
        run.log_metrics(figures, step=epoch)
        report = {**figures, "epoch": epoch, EPOCHS_DONE: epoch + 1, "mlflow_run_id": run.run_id}
        trial.last_result = report
        if driver.scheduler.on_trial_result(None, trial, report) == "STOP":
            _complete(driver, trial, i)  # the callback closes its run, early-stopped
            return
        gate.on_trial_result(trial_id, report)
        driver.callback.on_trial_result(iteration=i, trials=[], trial=trial, result=report)
    run.end("FINISHED")
    trial.last_result = {**figures, "mlflow_run_id": run.run_id, DONE_KEY: 1}
    _complete(driver, trial, i)


def _complete(driver: SimpleNamespace, trial: Any, i: int) -> None:
    gate = driver.gate
    live = trial.trial_id in gate.live_trials
    gate.on_trial_complete(trial.trial_id, trial.last_result)
    if not live:  # asked directly, outside the windows: the limiter does not know it
        gate.searcher.on_trial_complete(trial.trial_id, trial.last_result)
    driver.callback.on_trial_complete(iteration=i, trials=[], trial=trial)


def _window_row(n: int, window: range, clock: Clock) -> Json:
    """Milliseconds per trial over ``window`` (trials ending at ``n``), by bucket; the
    sampler's apart for the trials that used TPE (odd numbers) and the random sampler."""
    per = {b: _mean([clock.spent[i][b] for i in window]) for b in (*DRIVER, *APART)}
    tpe = [i for i in window if i % 2 == 1]
    rand = [i for i in window if i not in tpe]
    return {
        "trials": n,
        "window": [window.start, window.stop - 1],
        **{f"{b}_ms": 1e3 * v for b, v in per.items()},
        "driver_ms": 1e3 * sum(per[b] for b in DRIVER),
        "sampler_random_ms": 1e3 * _mean([clock.spent[i]["sampler"] for i in rand]),
        "sampler_tpe_ms": 1e3 * _mean([clock.spent[i]["sampler"] for i in tpe]),
    }


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


# ---- the report


def markdown(report: Json) -> str:
    sides = report["sides"]
    names = [s for s in ("before", "after") if s in sides]
    lines = [
        "# The sweep driver's own cost per trial as a sweep grows",
        "",
        f"{provenance(report, 'driver_bench.py')} Trials that train nothing, one at a time; "
        f"milliseconds per trial, averaged over the trials ending at each size. `before`: the "
        f"package at {report.get('before_rev') or '-'}; `after`: this tree. Driver = budget "
        "gate + MO-ASHA + callbacks (in the driver process); the trial's lookup of its earlier "
        "runs runs in the worker; Optuna's storage and sampler apart. Ray Tune's controller "
        "loop is not included.",
        "",
        *head(
            "side | trials | driver ms | gate | MO-ASHA | callbacks | worker lookup | "
            "Optuna storage | random sampler | TPE sampler"
        ),
    ]
    for side in names:
        for r in sides[side]["rows"]:
            cells = [side, str(r["trials"])]
            cells += [num(r[k], ".2f") for k in ("driver_ms", "gate_ms", "scheduler_ms")]
            cells += [num(r[k], ".2f") for k in ("callbacks_ms", "lookup_ms", "optuna_ms")]
            cells += [num(r[k], ".2f") for k in ("sampler_random_ms", "sampler_tpe_ms")]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *_goal_lines(sides)]
    return "\n".join(lines)


def _goal_lines(sides: Json) -> list[str]:
    lines = []
    for side in [s for s in ("before", "after") if s in sides]:
        rows = sides[side]["rows"]
        first, last = rows[0], rows[-1]
        ratio = last["driver_ms"] / first["driver_ms"]
        lookup = last["lookup_ms"] / first["lookup_ms"]
        verdict = "met" if ratio <= GOAL_RATIO else "not met"
        lines.append(
            f"- {side}: driver {last['driver_ms']:.2f} ms per trial at {last['trials']} trials "
            f"against {first['driver_ms']:.2f} ms at {first['trials']}: {ratio:.2f}x (goal "
            f"<= {GOAL_RATIO}x: {verdict}); worker lookup {lookup:.2f}x; its run "
            f"{sides[side]['wall_s']:.0f} s."
        )
    return lines


if __name__ == "__main__":
    sys.exit(main())
