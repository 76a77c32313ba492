"""Markdown pieces the benchmark reports share: number cells, table heads, goal verdicts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

Json = dict[str, Any]


def num(x: Any, fmt: str = ".2f", scale: float = 1.0, missing: str = "-") -> str:
    """``scale * x`` formatted with ``fmt``; ``missing`` for None, NaN, inf or a non-number."""
    if not isinstance(x, (int, float)) or not math.isfinite(x):
        return missing
    return f"{scale * x:{fmt}}"


def head(columns: str, rule: str = "---") -> list[str]:
    """A table's header row from ``"a | b | c"``, and its rule (``---``; ``---:`` aligns right)."""
    return [f"| {columns} |", "|" + f"{rule}|" * (columns.count("|") + 1)]


def verdict(ok: bool | None) -> str:
    """PASS or MISS; ``n/a`` where the goal could not be checked (its runs are missing)."""
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def check(goal: str, ok: bool | None, detail: str, **where: Any) -> Json:
    """One goal check: ``where`` (e.g. ``dataset=``) first, then goal, verdict and numbers."""
    return {**where, "goal": goal, "verdict": verdict(ok), "detail": detail}


def goal_table(checks: Sequence[Json], where: Sequence[str] = ()) -> list[str]:
    """The checks as a table: the ``where`` columns, then goal, verdict and numbers."""
    lines = head(" | ".join([*where, "goal", "verdict", "numbers"]))
    for c in checks:
        cells = [str(c[k]) for k in where] + [c["goal"], c["verdict"], c["detail"]]
        lines.append("| " + " | ".join(cells) + " |")
    return lines
