"""Search spaces: a YAML file of parameters, sampled in order through an Optuna trial.

A search space maps dotted config paths to parameter specs, sampled in file order::

    params:
      train.lr:            {type: float, low: 1.0e-3, high: 0.3, log: true}
      train.batch_size:    {type: categorical, choices: [64, 128, 256]}
      selection.strategy:  {type: categorical, choices: [graft, random, full]}
      selection.fraction:  {type: float, low: 0.05, high: 0.5,
                            when: "selection.strategy != 'full'"}

Types: ``float`` and ``int`` (``low`` < ``high``, optional ``log: true`` or ``step``) and
``categorical`` (``choices``: strings, numbers, true, false, null). ``when:`` holds
conditions on parameters declared earlier, joined by ``and``: ``name == value``,
``name != value``, ``name in [values]``, ``name not in [values]`` (:class:`Condition`). A
parameter whose conditions do not all hold (or name an inactive parameter) is not sampled, so
the trial keeps the pipeline's value for it.

No Ray and no Optuna import: a search space is plain data until a trial samples it.

Example:
    >>> space = space_from_dict({"params": {
    ...     "selection.strategy": {"type": "categorical", "choices": ["graft", "full"]},
    ...     "selection.fraction": {"type": "float", "low": 0.1, "high": 0.5,
    ...                            "when": "selection.strategy != 'full'"}}})
    >>> space.names
    ('selection.strategy', 'selection.fraction')
    >>> space.params[1].when
    (Condition(name='selection.strategy', values=('full',), negated=True),)
    >>> import optuna
    >>> trial = optuna.trial.FixedTrial({"selection.strategy": "full"})
    >>> space.sample(trial)
    {'selection.strategy': 'full'}
"""

from __future__ import annotations

from graft_hpo.space._conditions import Condition
from graft_hpo.space._conditions import ConditionSyntaxError
from graft_hpo.space._conditions import parse_when
from graft_hpo.space._space import ParamSpec
from graft_hpo.space._space import SearchSpace
from graft_hpo.space._space import load_space
from graft_hpo.space._space import space_from_dict
from graft_hpo.space._space import validate_space

__all__ = [
    "Condition",
    "ConditionSyntaxError",
    "ParamSpec",
    "SearchSpace",
    "load_space",
    "parse_when",
    "space_from_dict",
    "validate_space",
]
