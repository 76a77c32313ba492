"""benchmarks/gpu_check.py's report: issue 12's goals and the Markdown tables."""

from __future__ import annotations

import json
from typing import Any

from benchmarks._machine import json_safe

Json = dict[str, Any]


def add_time_vs_full(rows: list[Json]) -> None:
    """Set each row's ``time_vs_full``: the seconds of the full-data row of its part and
    variant over its own (None without one)."""
    full = {(r["part"], r["variant"]): r["seconds"] for r in rows if r["strategy"] == "full"}
    for r in rows:
        base = full.get((r["part"], r["variant"]))
        r["time_vs_full"] = base / r["seconds"] if base and r["seconds"] else None


def _row(report: Json, part: str, strategy: str) -> Json | None:
    rows = [r for r in report.get("trials", []) if r["part"] == part and r["strategy"] == strategy]
    return rows[0] if rows and rows[0]["status"] == "FINISHED" else None


def goals(report: Json) -> list[Json]:
    """Issue 12's goals, each with its measured value (None: not measured here)."""
    full, random_, graft = (_row(report, "trials", s) for s in ("full", "random", "graft"))
    pack = [r for r in report.get("concurrency", []) if r["model"] == "cnn" and r["trials"] == 4]
    ratio = pack[0]["attributed_over_device"] if pack else None
    checks = [
        (
            "trial training throughput >= 80% of the ceiling (full data)",
            full and full["share_of_ceiling"],
            lambda v: v >= 0.8,
        ),
        (
            "GRAFT at budget 0.3 takes >= 2.5x less time than full data",
            graft and graft["time_vs_full"],
            lambda v: v >= 2.5,
        ),
        (
            "GRAFT's accuracy >= random subsets' at the same budget (val acc difference)",
            graft and random_ and graft["val_acc"] - random_["val_acc"],
            lambda v: v >= 0,
        ),
        (
            "selection <= 10% of the GRAFT trial's time",
            graft and graft["selection_share"],
            lambda v: v <= 0.10,
        ),
        (
            "a selection round <= 0.15 of a full-data training epoch",
            report.get("selection", {}).get("round_over_epoch"),
            lambda v: v <= 0.15,
        ),
        (
            "4 cnn trials on one device: >= 2.5x the trials per minute of one",
            pack[0].get("speedup_vs_one") if pack else None,
            lambda v: v >= 2.5,
        ),
        (
            "4 trials' attributed GPU energy within 10% of the device's (ratio)",
            ratio,
            lambda v: abs(v - 1) <= 0.10,
        ),
        (
            "pytest -m gpu passes (return code)",
            report.get("pytest_gpu", {}).get("rc"),
            lambda v: v == 0,
        ),
    ]
    return [
        {"goal": goal, "value": value, "met": None if value is None else bool(test(value))}
        for goal, value, test in checks
    ]


def _f(value: Any, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def markdown(report: Json) -> str:
    """The report as Markdown tables."""
    lines = [
        f"# gpu_check on {report['machine']['description']}",
        "",
        f"`{report['command']}`, {report['wall_s']:.0f} s",
        "",
        "## Goals",
        "",
        "| goal | value | met |",
        "|---|---|---|",
    ]
    for g in report["goals"]:
        met = {True: "yes", False: "**no**", None: "not measured"}[g["met"]]
        lines.append(f"| {g['goal']} | {_f(g['value'], '.3f')} | {met} |")
    lines += [
        "",
        "## Ceiling (samples/s of the bare training step)",
        "",
        "| model | batch | precision | layout | compile | samples/s | step ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in report.get("ceilings", []):
        default = " (default)" if c.get("default_layout") else ""
        lines.append(
            f"| {c['model']} | {c['batch_size']} | {c['precision']} | "
            f"{c['memory_format']}{default} | {c['compile']} | "
            f"{c['samples_per_s']:.0f} | {c['step_ms']:.2f} |"
        )
    lines += [
        "",
        "## Trials",
        "",
        "| part | data | strategy | variant | val acc | test acc | wall s | selection share "
        "| rounds x s | samples/s | ceiling | share of ceiling | time vs full |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report.get("trials", []):
        if r["status"] != "FINISHED":
            lines.append(
                f"| {r['part']} | | {r['strategy']} | {r['variant']} | failed: {r['error']} |"
            )
            continue
        lines.append(
            f"| {r['part']} | {r['model']} | {r['strategy']} | {r['variant']} | "
            f"{_f(r['val_acc'], '.4f')} | {_f(r['test_acc'], '.4f')} | {r['seconds']:.1f} | "
            f"{r['selection_share']:.1%} | {r['rounds']} x {_f(r['round_s'])} | "
            f"{_f(r['samples_per_s'], '.0f')} | {_f(r['ceiling'], '.0f')} | "
            f"{_f(r['share_of_ceiling'], '.2f')} | {_f(r.get('time_vs_full'))}x |"
        )
    lines += [
        "",
        "## Trials sharing one device",
        "",
        "| model | trials | resources.gpu | wall s | trials/min | vs one | attributed J "
        "| device J | ratio | rule |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report.get("concurrency", []):
        lines.append(
            f"| {r['model']} | {r['trials']} | {r['resources_gpu']:.2f} | {r['wall_s']:.1f} | "
            f"{r['trials_per_min']:.1f} | {_f(r.get('speedup_vs_one'))}x | "
            f"{_f(r['attributed_sum_j'], '.0f')} | {_f(r['device_j'], '.0f')} | "
            f"{_f(r['attributed_over_device'], '.3f')} | "
            f"{', '.join(sorted({str(t) for t in r['gpu_energy_attributed']}))} |"
        )
    for key in ("selection", "compile", "pytest_gpu"):
        if key in report:
            shown = {
                k: v for k, v in report[key].items() if k not in ("tail", "eager", "compiled")
            }
            lines += ["", f"## {key}", "", f"`{json.dumps(json_safe(shown))}`"]
    if report["skipped"] or report["errors"]:
        lines += ["", "## Not measured", ""]
        lines += [f"- {s['part']}: skipped ({s['why']})" for s in report["skipped"]]
        lines += [f"- {e['part']}: {e['error']}" for e in report["errors"]]
    return "\n".join(lines) + "\n"
