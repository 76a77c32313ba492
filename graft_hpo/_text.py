"""How graft-hpo's results read on a terminal: the text the CLI prints without ``--json``."""

from __future__ import annotations

import shlex
from typing import Any

from graft_hpo._names import CO2_KG
from graft_hpo._names import DURATION_S
from graft_hpo._names import ENERGY_KWH
from graft_hpo._names import EPOCHS_COMPLETED
from graft_hpo._names import FRACTION_EFFECTIVE
from graft_hpo._names import SELECTION_S
from graft_hpo._names import TEST_ACC
from graft_hpo._names import VAL_ACC
from graft_hpo._names import VAL_LOSS

__all__ = ["retrain_text", "selected_text", "sweep_text", "trial_text", "yaml_dump"]


def selected_text(data: dict[str, Any], *, tracking_uri: str | None = None) -> str:
    """``select``'s lines; its retrain hint names ``tracking_uri`` when one was given."""
    got, params = data["metrics"], data["params"]
    store = f" --tracking-uri {shlex.quote(tracking_uri)}" if tracking_uri else ""
    metrics = "  ".join(f"{k}={got[k]:.4g}" for k in _SHOWN_METRICS if k in got)
    config = "  ".join(f"{k}={params[k]}" for k in _SHOWN_PARAMS if k in params)
    return "\n".join(
        [
            f"run {data['run_id']} ({data['policy']}) of sweep {data['tags'].get('sweep_id')}",
            f"  {metrics}",
            f"  {config}  (--json: every param)",
            f"retrain: graft-hpo retrain {data['run_id']}{store} --register NAME",
        ]
    )


_SHOWN_METRICS = (
    VAL_ACC,
    CO2_KG,
    ENERGY_KWH,
    DURATION_S,
    FRACTION_EFFECTIVE,
)
_SHOWN_PARAMS = ("selection.strategy", "selection.fraction", "train.lr", "train.epochs")


def retrain_text(data: dict[str, Any]) -> str:
    lines = [f"run {data['run_id']}: {data['status']} (retrained from {data['source_run_id']})"]
    if data.get("error"):
        lines.append(f"  error: {data['error']}")
    metrics = data["metrics"]
    keys = (
        TEST_ACC,
        VAL_ACC,
        ENERGY_KWH,
        CO2_KG,
        DURATION_S,
        EPOCHS_COMPLETED,
    )
    lines += [f"  {k:<20} {metrics[k]:.6g}" for k in keys if k in metrics]
    if data.get("model_uri"):
        lines.append(f"model: {data['model_uri']}")
        lines.append(
            f"  load: graft_hpo.load_model({data['model_uri']!r}, "
            f"tracking_uri={data.get('tracking_uri')!r})  (predict: logits)"
        )
    return "\n".join(lines)


def sweep_text(result: dict[str, Any]) -> str:
    from graft_hpo.pareto import ParetoPoint
    from graft_hpo.pareto import pareto_table

    points = [
        ParetoPoint(p["run_id"], p["params"], p["metrics"], p["tags"]) for p in result["pareto"]
    ]
    objectives = [tuple(o) for o in result["objectives"]]
    counts = ", ".join(f"{v} {k}" for k, v in result["trials"].items() if v) or "no trial ran"
    totals = result.get("totals", {})
    shared = "sweep_shared_selection_duration_s" in totals
    lines = [f"sweep {result['sweep_id']}: {counts}"]
    if "sweep_energy_kwh" in totals:
        lines.append(
            f"energy: {totals['sweep_energy_kwh']:.4g} kWh, "
            f"CO2: {totals.get('sweep_co2_kg', 0.0):.4g} kg "
            + ("(trials and shared selection)" if shared else "(trials)")
        )
    if shared:
        lines.append(
            "shared selection (once, before the trials): "
            f"{totals.get('sweep_shared_selection_energy_kwh', 0.0):.4g} kWh, "
            f"{totals.get('sweep_shared_selection_co2_kg', 0.0):.4g} kg CO2, "
            f"{totals['sweep_shared_selection_duration_s']:.1f} s"
        )
    finished = result["trials"].get("FINISHED", 0) > 0  # else no front, nothing to open
    if finished:
        shown = " vs ".join(f"{m} {mode}" for m, mode in objectives)
        lines += [f"Pareto front ({shown}):", pareto_table(points, objectives)]
    lines += [f"  failed {f['run_id']}: {f['error']}" for f in result["failed"]]
    if result.get("stop_reason"):
        lines.append(f"stopped early: {result['stop_reason']}")
    if not finished:
        return "\n".join(lines)
    if result.get("selected"):
        chosen = result["selected"]
        chosen_run = f"run {chosen['run_id']}" if "run_id" in chosen else chosen["error"]
        lines.append(f"selected ({chosen['policy']}): {chosen_run}")
    if result.get("model"):
        model = result["model"]
        got = model["metrics"]
        scores = "  ".join(f"{k}={got[k]:.4g}" for k in (TEST_ACC, CO2_KG) if k in got)
        lines.append(f"model: {model['model_uri'] or model['error']}  {scores}".rstrip())
    return "\n".join([*lines, "", *commands_text(result)])


def commands_text(result: dict[str, Any]) -> list[str]:
    """The commands that open the sweep's store, its study and continue it."""
    from graft_hpo.tracking import ui_url

    uri = result["tracking_uri"]
    store = uri.removeprefix("sqlite:///")
    experiment_id = result.get("experiment_id")
    lines = []
    if store != uri:  # a local sqlite store: `mlflow ui` serves it, on port 5000
        lines.append(f"MLflow UI:         mlflow ui --backend-store-uri {uri} --host 127.0.0.1")
        if experiment_id:  # MLflow 3.17 opens on its GenAI view without this link's query
            lines.append(
                f"                   then open {ui_url('http://127.0.0.1:5000', experiment_id)}"
            )
    elif uri.startswith(("http://", "https://")) and experiment_id:
        lines.append(f"MLflow runs:       {ui_url(uri, experiment_id)}")
    lines += [
        f"optuna-dashboard:  optuna-dashboard {result['optuna_storage']} --host 127.0.0.1",
        f"resume:            graft-hpo resume {result['sweep_dir']}",
    ]
    return lines


def yaml_dump(data: Any) -> str:
    import yaml

    return str(yaml.safe_dump(data, sort_keys=False))


def trial_text(result: dict[str, Any]) -> str:
    metrics = result["metrics"]
    keys = (
        VAL_ACC,
        VAL_LOSS,
        CO2_KG,
        ENERGY_KWH,
        DURATION_S,
        SELECTION_S,
        FRACTION_EFFECTIVE,
        EPOCHS_COMPLETED,
    )
    lines = [f"run {result['run_id']}: {result['status']}"]
    if result.get("error"):
        lines.append(f"  error: {result['error']}")
    lines += [f"  {k:<20} {metrics[k]:.6g}" for k in keys if k in metrics]
    return "\n".join(lines)
