"""The sweep's one line per finished trial (stderr), instead of Ray's progress tables."""

from __future__ import annotations

from types import SimpleNamespace

from graft_hpo.sweep._tune import _Progress


def _trial(trial_id: str, strategy: str, val_acc: float) -> SimpleNamespace:
    return SimpleNamespace(
        trial_id=trial_id,
        config={"selection.strategy": strategy},
        last_result={"val_acc": val_acc, "co2_kg": 1.5e-6},
    )


def test_lines_name_the_trial_and_keep_their_columns_past_nine() -> None:
    plan = SimpleNamespace(
        trials=12,
        objectives=[("val_acc", "max"), ("co2_kg", "min")],
        config=SimpleNamespace(selection=SimpleNamespace(strategy="graft")),
    )
    lines: list[str] = []
    progress = _Progress(plan, lines.append)  # type: ignore[arg-type]
    for i in range(12):
        progress.line("FINISHED", _trial(f"{i:08x}", ("graft", "random")[i % 2], 0.9))

    assert lines[0] == "[ 1/12] trial 00000000 FINISHED      graft  val_acc=0.9  co2_kg=1.5e-06"
    assert lines[11].startswith("[12/12] trial 0000000b FINISHED      random ")
    assert len({line.index("FINISHED") for line in lines}) == 1
