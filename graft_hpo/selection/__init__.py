"""GRAFT data-subset selection for PyTorch: torch only, usable in any training loop.

Public names:

- :class:`Selector` and the strategies ``graft``, ``random``, ``full``, ``infobatch``, built by
  name (:func:`get_selector`, :func:`available_selectors`) or from a pipeline's ``selection``
  section (:func:`build_selector`); a strategy's result is a :class:`Selection`.
- :class:`SubsetSchedule` — the one place that decides an epoch's :class:`Phase` (full data or
  subset, re-selected or not); :class:`SubsetSampler`, a ``torch.utils.data.Sampler`` that
  follows it.
- :class:`Ranking`, :class:`PrefixSelector` — one selection serving every budget
  (``GraftSelector.rank_dataset``): a sweep ranks once, each trial takes a prefix.
- :func:`fast_maxvol`, :func:`log_volume` — the paper's batched Fast MaxVol (LU/DEIM pivots +
  maxvol swaps + rectangular maxvol), usable on its own, and the volume it maximises.

The algorithm's steps (features, gradient kernels, alignment, partition, size allocation) live
in the private modules and may change without notice.
"""

from graft_hpo.selection._base import Phase
from graft_hpo.selection._base import Selection
from graft_hpo.selection._base import Selector
from graft_hpo.selection._base import SubsetSchedule
from graft_hpo.selection._graft import GraftSelector
from graft_hpo.selection._infobatch import InfoBatchSelector
from graft_hpo.selection._maxvol import fast_maxvol
from graft_hpo.selection._maxvol import log_volume
from graft_hpo.selection._rank import PrefixSelector
from graft_hpo.selection._rank import Ranking
from graft_hpo.selection._registry import available_selectors
from graft_hpo.selection._registry import build_selector
from graft_hpo.selection._registry import get_selector
from graft_hpo.selection._registry import selector_for
from graft_hpo.selection._registry import uses_ranking
from graft_hpo.selection._sampler import SubsetSampler
from graft_hpo.selection._simple import FullSelector
from graft_hpo.selection._simple import RandomSelector

__all__ = [
    "FullSelector",
    "GraftSelector",
    "InfoBatchSelector",
    "Phase",
    "PrefixSelector",
    "RandomSelector",
    "Ranking",
    "Selection",
    "Selector",
    "SubsetSampler",
    "SubsetSchedule",
    "available_selectors",
    "build_selector",
    "fast_maxvol",
    "get_selector",
    "log_volume",
    "selector_for",
    "uses_ranking",
]
