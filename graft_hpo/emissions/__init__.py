"""Energy and CO2 of a trial, measured by codecarbon's offline tracker.

``import graft_hpo.emissions`` does not import codecarbon; :func:`measure_emissions` does, when
it runs.
"""

from __future__ import annotations

from graft_hpo.emissions._attribution import gpu_index
from graft_hpo.emissions._measure import EmissionsMeasurement
from graft_hpo.emissions._measure import EmissionsResult
from graft_hpo.emissions._measure import check_country
from graft_hpo.emissions._measure import measure_emissions
from graft_hpo.emissions._measure import warm_up

__all__ = [
    "EmissionsMeasurement",
    "EmissionsResult",
    "check_country",
    "gpu_index",
    "measure_emissions",
    "warm_up",
]
