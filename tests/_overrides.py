"""Overrides shared by tests that run whole trials: short, on the CPU, still measured."""

from __future__ import annotations

FAST_TRIAL = [
    "train.epochs=2",
    "train.device=cpu",
    "emissions.measure_power_secs=1",
    "selection.warm_start_epochs=1",
]

# for a sweep of the digits space, which samples selection.warm_start_epochs itself (a --set of
# it would be replaced by each trial's draw, with a warning)
FAST_SWEEP_TRIAL = [s for s in FAST_TRIAL if not s.startswith("selection.warm_start_epochs=")]
