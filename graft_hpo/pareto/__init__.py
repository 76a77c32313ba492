"""Pareto fronts in pure numpy: dominance, a sweep's front of runs, choosing one run off it
by a policy, and its plot. No MLflow: :mod:`graft_hpo.tracking` reads the runs and calls these.

``import graft_hpo.pareto`` imports neither torch nor matplotlib (:func:`plot_front` imports
matplotlib when called).
"""

from __future__ import annotations

from graft_hpo.pareto._dominance import hypervolume_2d
from graft_hpo.pareto._dominance import pareto_mask
from graft_hpo.pareto._front import ParetoPoint
from graft_hpo.pareto._front import front_of
from graft_hpo.pareto._front import is_front_candidate
from graft_hpo.pareto._front import normalize_objectives
from graft_hpo.pareto._front import pareto_table
from graft_hpo.pareto._plot import plot_front
from graft_hpo.pareto._policy import Policy
from graft_hpo.pareto._policy import check_logged
from graft_hpo.pareto._policy import check_policy
from graft_hpo.pareto._policy import choose
from graft_hpo.pareto._policy import parse_policy

__all__ = [
    "ParetoPoint",
    "Policy",
    "check_logged",
    "check_policy",
    "choose",
    "front_of",
    "hypervolume_2d",
    "is_front_candidate",
    "normalize_objectives",
    "pareto_mask",
    "pareto_table",
    "parse_policy",
    "plot_front",
]
