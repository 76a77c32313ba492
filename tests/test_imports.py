"""Import hygiene: light top-level imports and the import-linter layer contracts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("ray", "optuna", "mlflow", "codecarbon")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


# (what runs in a fresh interpreter, the modules it must not have imported)
LIGHT = {
    "package": ("import graft_hpo", HEAVY),
    "selection": ("import graft_hpo, graft_hpo.selection", HEAVY),
    "cli": ("import graft_hpo.cli", (*HEAVY, "torch")),  # keeps --help fast
    "emissions, disabled": (
        "import graft_hpo.emissions as e\n"
        "from graft_hpo.config import EmissionsConfig\n"
        "with e.measure_emissions(EmissionsConfig(enabled=False)) as m:\n"
        "    pass\n"
        "assert m.result.error == 'disabled'",
        HEAVY,
    ),
    "pareto": (
        "import graft_hpo.pareto as p\n"
        "p.pareto_mask([[1.0, 2.0]], [True, False])\n"
        "p.parse_policy('knee')",
        (*HEAVY, "matplotlib", "torch"),
    ),
    "tracking, pure parts": (
        "import graft_hpo.tracking as t\nt.resolve_tracking_uri(None)",
        (*HEAVY, "matplotlib", "torch"),
    ),
}


@pytest.mark.parametrize("case", sorted(LIGHT))
def test_import_loads_no_heavy_dependency(case: str) -> None:
    body, forbidden = LIGHT[case]
    code = (
        "import json, sys\n"
        f"{body}\n"
        f"print(json.dumps(sorted(m for m in {list(forbidden)!r} if m in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_env(),
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_import_contracts_hold() -> None:
    """``lint-imports`` checks the layers and forbidden imports declared in pyproject.toml."""
    lint_imports = Path(sys.executable).parent / "lint-imports"
    assert lint_imports.exists(), f"import-linter is a dev dependency; {lint_imports} is missing"
    result = subprocess.run(
        [str(lint_imports), "--no-cache", "--no-logo"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_env(),
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
