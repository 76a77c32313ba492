"""GRAFT data-subset selection for PyTorch: torch only, usable in any training loop.

Public names:

- :func:`fast_maxvol` — batched LU/DEIM pivots + maxvol swaps + rectangular maxvol.
- :func:`low_rank_basis`, :func:`capture_embeddings` — per-batch low-rank features.
- :func:`last_layer_gradients`, :func:`gradient_kernel`, :func:`alignment` — closed-form
  cross-entropy gradients of the final linear layer and subset/batch cosine alignment.
- :class:`Selector` and the strategies ``graft``, ``random``, ``full``, ``infobatch``
  (:func:`get_selector`), :class:`Selection`, :class:`SubsetSchedule`.
- :func:`partition` — the seeded (optionally class-stratified) selection batches.
- :class:`SubsetSampler` — a ``torch.utils.data.Sampler`` that re-selects on schedule.
- :class:`Ranking`, :class:`PrefixSelector`, :func:`prefix_alignment` — one selection serving
  every budget (``GraftSelector.rank_dataset``): a sweep ranks once, each trial takes a prefix.
"""

from graft_hpo.selection._alignment import alignment
from graft_hpo.selection._alignment import gradient_kernel
from graft_hpo.selection._alignment import last_layer_gradients
from graft_hpo.selection._alignment import logit_residuals
from graft_hpo.selection._alignment import prefix_alignment
from graft_hpo.selection._base import Phase
from graft_hpo.selection._base import Selection
from graft_hpo.selection._base import Selector
from graft_hpo.selection._base import SubsetSchedule
from graft_hpo.selection._features import capture_embeddings
from graft_hpo.selection._features import low_rank_basis
from graft_hpo.selection._graft import GraftSelector
from graft_hpo.selection._graft import allocate_sizes
from graft_hpo.selection._graft import partition
from graft_hpo.selection._infobatch import InfoBatchSelector
from graft_hpo.selection._maxvol import fast_maxvol
from graft_hpo.selection._maxvol import log_volume
from graft_hpo.selection._rank import PrefixSelector
from graft_hpo.selection._rank import Ranking
from graft_hpo.selection._rank import budget_of
from graft_hpo.selection._registry import available_selectors
from graft_hpo.selection._registry import get_selector
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
    "alignment",
    "allocate_sizes",
    "available_selectors",
    "budget_of",
    "capture_embeddings",
    "fast_maxvol",
    "get_selector",
    "gradient_kernel",
    "last_layer_gradients",
    "log_volume",
    "logit_residuals",
    "low_rank_basis",
    "partition",
    "prefix_alignment",
]
