"""Bad input to the ``graft-hpo`` CLI: exit 2, one line naming the culprit, in seconds, no store.

One table of cases (:data:`CASES`). Each case runs ``graft_hpo.cli.main(argv)`` in-process in a
fresh ``tmp_path`` (the working directory, holding the bad files of :data:`FILES`), with the
tracking store at ``tmp_path/mlruns/mlflow.db``, and checks:

* the exit code (2: bad input);
* stderr's last non-empty line is the CLI's one error line, ``graft-hpo VERB: error: ...``,
  holding the case's substrings (the key or argument at fault, what was expected, what was
  given), with no traceback and no second ``graft-hpo`` line;
* nothing reached the tracking store: ``tmp_path/mlruns`` does not exist (a sweep would also
  put its folder there), and a pre-existing store still holds no runs;
* it returned within :data:`HANG_GUARD_S` (most cases take milliseconds).

Modes: ``cli`` cases must be refused before Ray starts (``start_ray`` is replaced by a function
that fails the test); ``ray`` cases reach checks that need a cluster (resources, and the tracking
store, which a sweep opens after joining Ray) and run on the session's one local Ray
(``ray_local``); ``subprocess`` cases need a process in which Ray is not yet initialised.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import pytest

from graft_hpo.cli import main

HANG_GUARD_S = 20.0  # "refused in seconds, not a hang"; most cases take milliseconds


class Case(NamedTuple):
    """One row of the table.

    ``argv`` may hold ``{tmp}`` (the case's folder), ``{uri}`` (the sqlite URI of
    ``{tmp}/mlruns/mlflow.db``, which must never appear) and ``{store}`` (the URI of an existing
    store holding one experiment, ``digits``, and no runs).
    """

    id: str
    argv: tuple[str, ...]
    exit: int
    needles: tuple[str, ...]
    mode: str = "cli"  # cli | ray | subprocess
    xfail: str | None = None  # a known product bug: the fix is proposed in the reason


def validate(*overrides: str) -> tuple[str, ...]:
    """``validate digits --set A --set B ...``."""
    return ("validate", "digits", *(arg for item in overrides for arg in ("--set", item)))


def train(*overrides: str) -> tuple[str, ...]:
    """``train digits --tracking-uri {uri} --set A ...`` (one epoch, on the CPU)."""
    sets = ("train.epochs=1", "train.device=cpu", *overrides)
    return ("train", "digits", "--tracking-uri", "{uri}", *(a for s in sets for a in ("--set", s)))


def sweep(*overrides: str) -> tuple[str, ...]:
    """``sweep digits --tracking-uri {uri} --set A ...``."""
    return (
        "sweep",
        "digits",
        "--tracking-uri",
        "{uri}",
        *(a for s in overrides for a in ("--set", s)),
    )


def space(name: str) -> tuple[str, ...]:
    """A sweep of digits over the search space ``{tmp}/space_NAME.yaml`` of :data:`FILES`."""
    return sweep(f"search.space={{tmp}}/space_{name}.yaml")


CONTRACT = "tests.plugins.contract"


def plug_data(function: str) -> tuple[str, ...]:
    """``validate digits`` with the data plug-in ``tests.plugins.contract:FUNCTION``."""
    return plug(f"data.name={CONTRACT}:{function}", "model.name=tests.plugins.toy:mlp")


def plug(*overrides: str) -> tuple[str, ...]:
    """``validate digits`` without its search space (which chooses model.name itself)."""
    return validate("search.space=null", *overrides)


FILES: dict[str, str] = {
    # pipelines
    "tab.yaml": "name: tab\ntrain:\n\tepochs: 3\n",
    "unclosed.yaml": "name: unclosed\ntrain: {epochs: [1, 2\n",
    "duplicate.yaml": "name: dup\ntrain: {epochs: 1}\ntrain: {epochs: 2}\n",
    "list.yaml": "- train\n- epochs\n",
    "top_typo.yaml": "name: top\ntrian:\n  epochs: 2\n",
    "nested_typo.yaml": "name: nested\nselection:\n  select_evry: 2\n",
    "section.yaml": "name: section\ntrain: 5\n",
    # search spaces
    "space_low_high.yaml": "params:\n  train.lr: {type: float, low: 0.5, high: 0.1}\n",
    "space_empty_choices.yaml": "params:\n  model.name: {type: categorical, choices: []}\n",
    "space_epochs.yaml": "params:\n  train.epochs: {type: int, low: 2, high: 6}\n",
    "space_emissions_off.yaml": (
        "params:\n  emissions.enabled: {type: categorical, choices: [true, false]}\n"
    ),
    "space_when_syntax.yaml": (
        "params:\n"
        "  model.name: {type: categorical, choices: [cnn, mlp]}\n"
        "  train.lr: {type: float, low: 0.01, high: 0.1, when: \"model.name = 'mlp'\"}\n"
    ),
    "space_when_later.yaml": (
        "params:\n"
        "  train.lr: {type: float, low: 0.01, high: 0.1, when: \"model.name == 'mlp'\"}\n"
        "  model.name: {type: categorical, choices: [cnn, mlp]}\n"
    ),
    "space_when_self.yaml": (
        'params:\n  train.lr: {type: float, low: 0.01, high: 0.1, when: "train.lr == 0.1"}\n'
    ),
    "space_when_unknown.yaml": (
        "params:\n"
        "  model.name: {type: categorical, choices: [cnn, mlp]}\n"
        "  train.lr: {type: float, low: 0.01, high: 0.1, when: \"model.nmae == 'mlp'\"}\n"
    ),
    "space_unknown_param.yaml": "params:\n  train.lrr: {type: float, low: 0.01, high: 0.1}\n",
    "space_bad_type.yaml": "params:\n  train.lr: {type: flaot, low: 0.01, high: 0.1}\n",
    "space_out_of_range.yaml": (
        "params:\n  selection.fraction: {type: float, low: 0.5, high: 1.5}\n"
    ),
    "space_fixed_section.yaml": "params:\n  resources.gpu: {type: int, low: 0, high: 1}\n",
    "space_tab.yaml": "params:\n\ttrain.lr: {type: float, low: 0.01, high: 0.1}\n",
    "space_model_option.yaml": "params:\n  model.options.hiden: {type: int, low: 8, high: 32}\n",
    "space_threshold.yaml": (
        "params:\n  selection.alignment_threshold: {type: float, low: 0.8, high: 1.0}\n"
    ),
    # sweep folders and tracking stores that are not
    "nosweep/README": "a folder without sweep.json\n",
    "corrupt_sweep/sweep.json": "{not json",
    "afile": "a regular file where a folder is expected\n",
    "empty/.keep": "",
}

OBJECTIVES_MAXIMISE = (
    "search.objectives=[{metric: val_acc, mode: maximise}, {metric: co2_kg, mode: min}]"
)
OBJECTIVES_TYPO = "search.objectives=[{metric: val_accc, mode: max}, {metric: co2_kg, mode: min}]"

CASES: list[Case] = [
    # ---- config: unknown keys, with a close match ----
    Case(
        "unknown-top-key-set",
        validate("trainn.epochs=3"),
        2,
        ("'trainn'", "did you mean 'train'"),
    ),
    Case("unknown-top-key-file", ("validate", "{tmp}/top_typo.yaml"), 2, ("'trian'", "'train'")),
    Case(
        "unknown-nested-key-set",
        validate("train.epocs=3"),
        2,
        ("'train.epocs'", "did you mean 'train.epochs'"),
    ),
    Case(
        "unknown-nested-key-file",
        ("validate", "{tmp}/nested_typo.yaml"),
        2,
        ("nested_typo.yaml", "'selection.select_evry'", "did you mean 'selection.select_every'"),
    ),
    Case(
        "unknown-model-option",
        validate("model.options.widht=3"),
        2,
        ("model.options.widht", "did you mean 'width'"),
    ),
    Case(  # the rule's [A-Z]{3} passes it; codecarbon does not know it (every trial failed)
        "country-unknown-to-codecarbon",
        validate("emissions.country_iso_code=GER"),
        2,
        ("emissions.country_iso_code must be an ISO 3166-1 alpha-3 code", "got 'GER'"),
    ),
    Case(
        "asha-on-co2-without-emissions",
        validate(
            "emissions.enabled=false",
            "search.objectives=[{metric: val_acc, mode: max}]",
            "search.scheduler={type: asha, metric: co2_kg, mode: min, grace_period: 1}",
        ),
        2,
        ("search.scheduler.metric 'co2_kg' needs emissions.enabled=true",),
    ),
    Case(  # GRAFT's selection batches take train.batch_size: the key the user set is named
        "graft-batch-of-one",
        validate("search.space=null", "train.batch_size=1"),
        2,
        ("train.batch_size must be >= 2 for GRAFT's selection batches", "got 1"),
    ),
    Case(  # the digits space draws mlp too, which has no embed_dim: its trials all failed
        "pipeline-option-a-drawn-model-does-not-take",
        validate("model.options.embed_dim=64"),
        2,
        ("params.model.name draws 'mlp'", "unknown key 'model.options.embed_dim' for model"),
    ),
    Case(  # a bundled model's option value: refused by validate, not in every trial
        "model-option-value",
        validate("model.options.embed_dim=0"),
        2,
        ("model.options.embed_dim must be an integer >= 1", "got 0"),
    ),
    Case(
        "sweep-model-option-value",  # before Ray and the store: no FAILED trials written
        sweep("model.name=mlp", "model.options.depth=-1"),
        2,
        ("model.options.depth must be an integer >= 0", "got -1"),
    ),
    Case(  # else the whole sweep ran before its select stage refused it (and no front shown)
        "select-policy-metric-no-trial-logs",
        validate("select={policy: 'max:val_ac'}"),
        2,
        ("select.policy's metric must be one a trial logs", "did you mean 'val_acc'", "'val_ac'"),
    ),
    Case(
        "select-policy-on-co2-without-emissions",
        validate(
            "emissions.enabled=false",
            "search.objectives=[{metric: val_acc, mode: max}, {metric: duration_s, mode: min}]",
            "select={policy: 'budget:co2_kg<=1e-6'}",
        ),
        2,
        ("select.policy's metric 'co2_kg' needs emissions.enabled=true",),
    ),
    Case(  # a floor on the only objective leaves nothing to optimise: refused before the sweep
        "select-policy-needs-another-objective",
        validate(
            "search.objectives=[{metric: val_acc, mode: max}]",
            "search.scheduler.metric=val_acc",
            "select={policy: 'floor:val_acc>=0.9'}",
        ),
        2,
        ("select.policy floor needs an objective other than 'val_acc' to optimise",),
    ),
    Case(
        "unknown-retrain-override",
        validate("retrain.overrides={train.epocs: 3}"),
        2,
        ("retrain.overrides", "'train.epocs'", "did you mean 'train.epochs'"),
    ),
    Case(
        "infobatch-prune-ratio-1",
        validate("selection.strategy=infobatch", "selection.prune_ratio=1"),
        2,
        ("selection.prune_ratio must be in [0, 1)", "got 1"),
    ),
    Case(
        "bad-selection-scope",
        validate("selection.scope=sweeep"),
        2,
        ("selection.scope must be one of 'trial', 'sweep'", "'sweeep'", "did you mean 'sweep'"),
    ),
    # ---- config: wrong types ----
    Case(
        "wrong-type-int",
        validate("train.epochs=abc"),
        2,
        ("train.epochs must be an integer", "'abc'"),
    ),
    Case("wrong-type-bool", validate("train.epochs=true"), 2, ("train.epochs", "True")),
    Case("wrong-type-nan", validate("train.lr=.nan"), 2, ("train.lr must be a finite number",)),
    Case(
        "wrong-type-section",
        ("validate", "{tmp}/section.yaml"),
        2,
        ("train must be a mapping", "got 5"),
    ),
    Case(
        "pipeline-not-a-mapping",
        ("validate", "{tmp}/list.yaml"),
        2,
        ("list.yaml", "must be a mapping", "['train', 'epochs']"),
    ),
    # ---- config: constraints ----
    Case(
        "unknown-sampler",
        validate("search.sampler=nsga3"),
        2,
        ("search.sampler must be one of", "'nsga3'", "did you mean 'nsga2'"),
    ),
    Case(
        "unknown-scheduler",
        validate("search.scheduler.type=hyperband"),
        2,
        ("search.scheduler.type must be one of 'asha'", "'hyperband'"),
    ),
    Case(
        "search-seed-beyond-32-bits",  # Optuna's samplers (and numpy) refuse it: a traceback
        validate("search.seed=4294967296"),
        2,
        ("search.seed must be in [0, 4294967295]", "got 4294967296"),
    ),
    Case(
        "train-seed-negative",
        validate("train.seed=-1"),
        2,
        ("train.seed must be in [0, 4294967295]", "got -1"),
    ),
    Case(
        "asha-metric-unknown",
        validate("search.scheduler={type: asha, metric: val_accuracy, mode: max}"),
        2,
        ("search.scheduler.metric must be one of val_acc, val_loss", "got 'val_accuracy'"),
    ),
    Case(
        "stopped-report-unknown",
        validate("search.stopped_report=truncated"),
        2,
        ("search.stopped_report must be one of 'projected', 'complete', 'pruned'", "'truncated'"),
    ),
    Case(
        "checkpoint-storage-relative",
        validate("search.checkpoint_storage=shared/sweeps"),
        2,
        ("search.checkpoint_storage must be an absolute path or a URI", "'shared/sweeps'"),
    ),
    Case(
        "max-failures-negative",
        validate("search.max_failures=-1"),
        2,
        ("search.max_failures must be in [0, 100]", "-1"),
    ),
    Case(
        "startup-trials-negative",
        validate("search.startup_trials=-5"),
        2,
        ("search.startup_trials must be in [0, 1000000] or null", "got -5"),
    ),
    Case(
        "startup-trials-for-a-sampler-without-one",
        sweep("search.sampler=nsga2", "search.startup_trials=30"),
        2,
        ("search.startup_trials must be null with search.sampler 'nsga2'", "got 30"),
    ),
    Case(
        "checkpoint-every-negative",
        validate("train.checkpoint_every=-2"),
        2,
        ("train.checkpoint_every must be in [0, 100000]", "-2"),
    ),
    Case(
        "threshold-searched-over-a-shared-ranking",
        validate("selection.scope=sweep", "search.space={tmp}/space_threshold.yaml"),
        2,
        ("space_threshold.yaml", "alignment_threshold cannot be searched", "scope 'sweep'"),
    ),
    Case(
        "scheduler-grace-past-the-last-epoch",
        validate("search.scheduler={type: asha, grace_period: 30}", "train.epochs=20"),
        2,
        ("search.scheduler.grace_period must be <= train.epochs (20)", "got 30"),
    ),
    Case(
        "objective-mode-maximise",
        validate(OBJECTIVES_MAXIMISE),
        2,
        ("search.objectives[0].mode must be one of 'max', 'min'", "'maximise'"),
    ),
    Case(
        "trials-0-set",
        validate("search.trials=0"),
        2,
        ("search.trials must be in [1, 1000000]", "got 0"),
    ),
    Case(
        "epochs-absurd",
        validate("train.epochs=1000000000"),
        2,
        ("train.epochs must be in [1, 100000]", "got 1000000000"),
    ),
    Case(
        "fraction-0",
        validate("selection.fraction=0"),
        2,
        ("selection.fraction must be in (0, 1]", "got 0"),
    ),
    Case(
        "fraction-1.5",
        validate("selection.fraction=1.5"),
        2,
        ("selection.fraction must be in (0, 1]", "got 1.5"),
    ),
    Case(
        "select-every-0",
        validate("selection.select_every=0"),
        2,
        ("selection.select_every must be in [1, 100000]", "got 0"),
    ),
    Case(
        "search-storage-foo",
        validate("search.storage=foo"),
        2,
        ("search.storage must be an SQLAlchemy URL", "'foo'"),
    ),
    Case(
        "co2-budget-negative",
        validate("search.co2_budget_kg=-1"),
        2,
        ("search.co2_budget_kg must be > 0", "got -1"),
    ),
    Case(
        "retrain-epochs-0",
        validate("retrain.epochs=0"),
        2,
        ("retrain.epochs must be >= 1", "got 0"),
    ),
    Case("select-policy-null", validate("select.policy="), 2, ("select.policy must be a string",)),
    Case(
        "select-policy-empty",
        validate("select.policy=''"),
        2,
        ("select.policy must be a non-empty string", "''"),
    ),
    Case(
        "select-policy-bogus",
        validate("select.policy=bogus"),
        2,
        ("select.policy", "'bogus'", "knee"),
    ),
    # ---- YAML files and names ----
    Case(
        "corrupt-yaml-tab",
        ("validate", "{tmp}/tab.yaml"),
        2,
        ("tab.yaml", "invalid YAML at line 3, column 1", "'\\t'"),
    ),
    Case(
        "corrupt-yaml-unclosed",
        ("validate", "{tmp}/unclosed.yaml"),
        2,
        ("unclosed.yaml", "invalid YAML", "expected ',' or ']'"),
    ),
    Case(
        "yaml-duplicate-key",
        ("validate", "{tmp}/duplicate.yaml"),
        2,
        ("duplicate.yaml", "duplicate key 'train'"),
    ),
    Case(
        "missing-pipeline-file",
        ("validate", "{tmp}/missing.yaml"),
        2,
        ("missing.yaml", "does not exist"),
    ),
    Case("pipeline-is-a-folder", ("validate", "{tmp}/empty"), 2, ("is a directory",)),
    Case(
        "pipeline-name-typo",
        ("validate", "mnsit"),
        2,
        ("'mnsit'", "did you mean 'mnist'", "digits"),
    ),
    # ---- --set syntax ----
    Case(
        "set-without-equals", validate("train.epochs"), 2, ("'dotted.key=value'", "train.epochs")
    ),
    Case("set-empty-key", validate("=3"), 2, ("override key must be a dotted path", "'=3'")),
    Case("set-empty-part", validate("train..epochs=3"), 2, ("'train..epochs=3'",)),
    Case("set-bad-yaml", validate("train.epochs=[1"), 2, ("'train.epochs=[1'", "invalid YAML")),
    # ---- plug-ins ----
    Case(
        "model-plugin-unimportable",
        validate("model.name=nosuch.module:fn"),
        2,
        ("model.name 'nosuch.module:fn'", "No module named 'nosuch'"),
    ),
    Case(
        "model-plugin-attr-missing",
        validate("model.name=tests.plugins.toy:nothere"),
        2,
        ("model.name", "has no attribute 'nothere'"),
    ),
    Case(
        "model-plugin-import-raises",
        validate("model.name=tests.plugins.broken:factory"),
        2,
        ("model.name 'tests.plugins.broken:factory'", "RuntimeError: broken on purpose"),
    ),
    Case(
        "model-plugin-not-callable",
        validate("model.name=tests.plugins.toy:NOT_CALLABLE"),
        2,
        ("model.name", "must name a callable", "int"),
    ),
    Case(
        "model-plugin-signature",
        validate("model.name=tests.plugins.toy:one_arg"),
        2,
        ("model.name", "must accept (input_shape, num_classes, **options)"),
    ),
    Case(
        "model-plugin-not-a-module",
        train("model.name=tests.plugins.toy:not_a_module"),
        2,
        ("model.name 'tests.plugins.toy:not_a_module' must build an nn.Module", "got str"),
    ),
    Case(
        "model-plugin-wrong-head",
        train("model.name=tests.plugins.toy:wrong_head"),
        2,
        ("model.name", "out_features == num_classes (10)", "got out_features=11"),
    ),
    Case(
        "data-plugin-unimportable",
        train("data.name=nosuch.module:fn"),
        2,
        ("data.name 'nosuch.module:fn'", "No module named 'nosuch'"),
    ),
    Case(
        "data-plugin-attr-missing",
        train("data.name=tests.plugins.toy:nothere"),
        2,
        ("data.name", "has no attribute 'nothere'"),
    ),
    Case(
        "data-plugin-wrong-shape",
        train("data.name=tests.plugins.toy:not_pairs"),
        2,
        ("data.name 'tests.plugins.toy:not_pairs'", "(x, y) pairs"),
    ),
    Case(
        "validate-data-plugin",
        validate("data.name=nosuch.module:fn"),
        2,
        ("data.name", "No module named 'nosuch'"),
    ),
    # ---- plug-in contracts: the data function and model factory run once, before anything
    # is written (tests/plugins/contract.py; data plug-ins feed tests.plugins.toy:mlp) ----
    Case(
        "data-plugin-numpy-arrays",
        plug_data("numpy_arrays"),
        2,
        (
            f"data.name '{CONTRACT}:numpy_arrays' must return (train, val)",
            "torch Datasets",
            "got train = a tuple of 2 (ndarray, ndarray)",
            "TensorDataset(",
        ),
    ),
    Case(
        "data-plugin-one-dataset",
        plug_data("one_dataset"),
        2,
        (f"data.name '{CONTRACT}:one_dataset' must return (train, val)", "got a TensorDataset"),
    ),
    Case(
        "data-plugin-float-labels",
        plug_data("float_labels"),
        2,
        ("float_labels'", "integer class labels y in 0..C-1", "train[0][1] is tensor(0.)"),
    ),
    Case(
        "data-plugin-float64-inputs",
        plug_data("float64_inputs"),
        2,
        (
            "float64_inputs' must yield inputs x in the dtype of the parameters of model.name",
            "(torch.float32); got torch.float64",
        ),
    ),
    Case(
        "data-plugin-integer-inputs",
        plug_data("integer_inputs"),
        2,
        ("integer_inputs'", "yielding float tensors x", "dtype torch.int64"),
    ),
    Case(
        "data-plugin-numpy-items",
        plug_data("numpy_items"),
        2,
        ("numpy_items'", "yielding x as a float torch.Tensor", "train[0][0] is a ndarray"),
    ),
    Case(
        "data-plugin-test-shape-differs",
        plug_data("test_shape_differs"),
        2,
        (
            "test_shape_differs'",
            "inputs of one shape",
            "train[0][0] has shape (5,)",
            "test[0][0] (4,)",
        ),
    ),
    Case(
        "data-plugin-item-raises",
        plug_data("missing_row"),
        2,
        (
            "missing_row': reading the data sets it returned raised KeyError",
            "row 7 missing",
            "contract.py:",
        ),
    ),
    Case(
        "data-plugin-labels-from-1",
        plug_data("labels_from_one"),
        2,
        (
            "labels_from_one'",
            "integer class labels y in 0..C-1",
            "got labels 1..3",
            "class 0 never in train",
            "subtract 1",
        ),
    ),
    Case(
        "data-plugin-raises",
        plug_data("raises"),
        2,
        (
            f"data.name '{CONTRACT}:raises' raised FileNotFoundError: no such file: cancer.csv",
            "at contract.py:",
            "when called as raises()",
        ),
    ),
    Case(
        "model-plugin-softmax-head",
        plug(f"model.name={CONTRACT}:softmax_head"),
        2,
        ("softmax_head' must return raw logits", "already a softmax", "remove the final Softmax"),
    ),
    Case(
        "model-plugin-log-softmax-head",
        plug(f"model.name={CONTRACT}:log_softmax_head"),
        2,
        ("log_softmax_head' must return raw logits", "remove the final LogSoftmax"),
    ),
    Case(
        "model-plugin-own-argument-names",
        plug(f"model.name={CONTRACT}:own_names"),
        2,
        (
            f"model.name '{CONTRACT}:own_names' raised TypeError",
            "own_names((1, 8, 8), 10)",
            "called as factory(input_shape: tuple[int, ...], num_classes: int, **model.options)",
        ),
    ),
    Case(
        "model-plugin-output-shape",
        plug(f"model.name={CONTRACT}:one_output"),
        2,
        ("one_output' must return logits of shape (N, num_classes) = (8, 10)", "got (8,)"),
    ),
    Case(
        "model-plugin-option-typo-in-space",
        validate("model.name=tests.plugins.toy:mlp", "search.space={tmp}/space_model_option.yaml"),
        2,
        (
            "space_model_option.yaml",
            "params.model.options.hiden",
            "unknown key 'model.options.hiden'",
            "did you mean 'hidden'",
        ),
    ),
    Case(
        "train-refuses-a-plugin-mistake",
        train(f"data.name={CONTRACT}:labels_from_one", "model.name=tests.plugins.toy:mlp"),
        2,
        ("labels_from_one'", "class 0 never in train"),
    ),
    Case(
        "sweep-refuses-a-plugin-mistake",
        sweep(f"data.name={CONTRACT}:labels_from_one"),
        2,
        ("labels_from_one'", "class 0 never in train"),
    ),
    Case(
        "sweep-space-offers-a-model-the-plugin-data-cannot-feed",
        sweep("data.name=tests.plugins.toy:blobs"),
        2,
        ("model.name 'cnn'", "(5,)"),
    ),
    # ---- label noise and the filter against it (docs/noise.md) ----
    Case(
        "label-noise-above-range",
        train("data.label_noise=1.5"),
        2,
        ("data.label_noise must be in [0, 1)", "got 1.5"),
    ),
    Case(
        "label-noise-negative",
        validate("data.label_noise=-0.1"),
        2,
        ("data.label_noise must be in [0, 1)", "got -0.1"),
    ),
    Case(
        "label-noise-plugin",
        validate("data.name=tests.plugins.toy:blobs", "data.label_noise=0.2"),
        2,
        ("data.label_noise must be 0 for a plug-in", "got 0.2", "tests.plugins.toy:blobs"),
    ),
    Case(
        "noise-filter-typo",
        validate("selection.noise_filter=misfits"),
        2,
        (
            "selection.noise_filter must be one of 'chance', 'misfit', 'knn', 'none'",
            "got 'misfits'",
            "'misfit'",
        ),
    ),
    Case(
        "noise-filter-yaml-off",
        validate("selection.noise_filter=off"),
        2,
        ("selection.noise_filter must be a string", "got False", "quote it in YAML"),
    ),
    # ---- data files ----
    Case(
        "missing-data-files",
        train("data.name=cifar10", "data.root={tmp}/empty", "data.download=false"),
        2,
        ("data.root", "cifar10 files not found", "data.download=true"),
    ),
    # ---- search spaces (refused before Ray starts) ----
    Case(
        "trials-0-flag",
        (*sweep(), "--trials", "0"),
        2,
        ("--trials must be an integer >= 1", "got 0"),
    ),
    Case("trials-not-int", (*sweep(), "--trials", "abc"), 2, ("--trials", "invalid int value")),
    Case(
        "space-low-gt-high",
        space("low_high"),
        2,
        ("params.train.lr.low must be < high", "low=0.5, high=0.1"),
    ),
    Case(
        "space-epochs-with-a-scheduler",
        (*space("epochs"), "--set", "search.scheduler={type: moasha}"),
        2,
        ("params.train.epochs must not be searched with a search.scheduler", "'moasha'"),
    ),
    Case(
        "space-searches-emissions-off-under-a-co2-objective",
        space("emissions_off"),
        2,
        (
            "params.emissions.enabled.choices[1]",
            "'co2_kg' needs emissions.enabled=true",
            "got emissions.enabled=false",
        ),
    ),
    Case(
        "space-empty-choices",
        space("empty_choices"),
        2,
        ("params.model.name.choices must be a non-empty list", "got []"),
    ),
    Case(
        "space-when-syntax",
        space("when_syntax"),
        2,
        ("params.train.lr.when has invalid syntax at column 12", "use '=='"),
    ),
    Case(
        "space-when-later-param",
        space("when_later"),
        2,
        ("params.train.lr.when must name only parameters declared before", "declared after"),
    ),
    Case(
        "space-when-circular",
        space("when_self"),
        2,
        ("params.train.lr.when", "'train.lr', the parameter itself"),
    ),
    Case(
        "space-when-unknown-param",
        space("when_unknown"),
        2,
        ("params.train.lr.when", "'model.nmae'", "did you mean 'model.name'"),
    ),
    Case(
        "space-unknown-param",
        space("unknown_param"),
        2,
        ("params.train.lrr", "did you mean 'train.lr'"),
    ),
    Case(
        "space-bad-type",
        space("bad_type"),
        2,
        ("params.train.lr.type must be one of float, int, categorical", "did you mean 'float'"),
    ),
    Case(
        "space-value-out-of-range",
        space("out_of_range"),
        2,
        ("params.selection.fraction.high", "selection.fraction must be in (0, 1]", "1.5"),
    ),
    Case(
        "space-fixed-section",
        space("fixed_section"),
        2,
        ("params.resources.gpu must not be searched",),
    ),
    Case("space-corrupt-yaml", space("tab"), 2, ("space_tab.yaml", "invalid YAML at line 2")),
    Case(
        "space-name-typo",
        sweep("search.space=digts"),
        2,
        ("search space 'digts'", "did you mean 'digits'"),
    ),
    Case(
        "objective-unknown-metric",
        sweep(OBJECTIVES_TYPO),
        2,
        ("search.objectives[0].metric must be one of", "'val_accc'"),
    ),
    Case(
        "validate-checks-space",
        validate("search.space={tmp}/space_low_high.yaml"),
        2,
        ("params.train.lr.low must be < high",),
    ),
    Case(
        "validate-checks-objective-metric",
        validate(OBJECTIVES_TYPO),
        2,
        ("search.objectives[0].metric", "'val_accc'"),
    ),
    # ---- resources no node can provide (the session's Ray: 2 CPUs, no GPU) ----
    Case(
        "resources-gpu-1",
        sweep("resources.gpu=1"),
        2,
        ("resources must fit on one node", "resources.gpu=1", "gpu=0"),
        mode="ray",
    ),
    Case(
        "resources-cpu-64",
        sweep("resources.cpu=64"),
        2,
        ("resources must fit on one node", "resources.cpu=64"),
        mode="ray",
    ),
    Case(
        "train-device-cuda-no-gpu",
        train("train.device=cuda"),
        2,
        ("train.device", "'cuda'"),
    ),
    Case(  # the files are looked for without reading them (a sweep of it starts no trial)
        "validate-cifar10-files-missing",
        ("validate", "cifar10", "--set", "data.root={tmp}/nodata"),
        2,
        ("data.root: cifar10 files not found under '", "nodata'", "set data.download=true"),
    ),
    # ---- tracking stores that cannot be opened ----
    Case(
        "sweep-tracking-inside-a-file",
        ("sweep", "digits", "--tracking-uri", "sqlite:///{tmp}/afile/mlflow.db"),
        2,
        ("tracking.uri 'sqlite:///", "afile/mlflow.db' cannot be opened"),
        mode="ray",
    ),
    Case(
        "sweep-dir-is-a-file",  # refused before Ray or the store: nothing written
        (*sweep(), "--sweep-dir", "{tmp}/afile"),
        2,
        ("--sweep-dir '", "afile' must be a folder; it is a file"),
    ),
    Case(
        "sweep-dir-under-a-file",
        (*sweep(), "--sweep-dir", "{tmp}/afile/sweep"),
        2,
        ("--sweep-dir '", "afile/sweep' cannot be created", "afile' is not a folder"),
    ),
    Case(
        "checkpoint-storage-under-a-file",
        (*sweep(), "--set", "search.checkpoint_storage={tmp}/afile/ckpt"),
        2,
        ("search.checkpoint_storage '", "afile/ckpt' cannot be created", "afile' is not a folder"),
    ),
    Case(
        "sweep-tracking-unreachable",
        ("sweep", "digits", "--tracking-uri", "http://127.0.0.1:1"),
        2,
        ("tracking.uri 'http://127.0.0.1:1' cannot be opened", "cannot connect to 127.0.0.1:1"),
        mode="ray",
    ),
    Case(
        "train-tracking-unreachable",
        ("train", "digits", "--tracking-uri", "http://127.0.0.1:1", "--set", "train.epochs=1"),
        2,
        ("tracking.uri 'http://127.0.0.1:1' cannot be opened",),
    ),
    Case(
        "pareto-tracking-unreachable",
        ("pareto", "--tracking-uri", "http://127.0.0.1:1"),
        2,
        ("tracking.uri 'http://127.0.0.1:1' cannot be opened", "cannot connect"),
    ),
    Case(
        "pareto-tracking-is-a-folder",
        ("pareto", "--tracking-uri", "sqlite:///{tmp}/empty"),
        2,
        ("tracking.uri", "is a folder, not a sqlite file"),
    ),
    Case(
        "pareto-tracking-file-store",  # MLflow 3 refuses a file store unless told otherwise
        ("pareto", "--tracking-uri", "file://{tmp}/filestore"),
        2,
        ("tracking.uri 'file:///", "filestore' cannot be opened", "MLFLOW_ALLOW_FILE_STORE=true"),
    ),
    Case(
        "pareto-no-store",
        ("pareto", "--tracking-uri", "{uri}"),
        2,
        ("tracking.uri", "there is no MLflow store"),
    ),
    Case(
        "pareto-sweep-id-nosuch",
        ("pareto", "--sweep-id", "nosuch", "--tracking-uri", "{store}"),
        2,
        ("sweep_id 'nosuch' not found",),
    ),
    Case(
        "pareto-experiment-typo",
        ("pareto", "--experiment", "digts", "--tracking-uri", "{store}"),
        2,
        ("tracking.experiment 'digts' not found", "did you mean 'digits'"),
    ),
    # ---- resume ----
    Case("resume-no-sweep-json", ("resume", "{tmp}/nosweep"), 2, ("nosweep", "no sweep.json")),
    Case(
        "resume-missing-folder",
        ("resume", "{tmp}/gone"),
        2,
        ("gone' does not exist", "expected a sweep folder"),
    ),
    Case(
        "resume-no-sweep-of-pipeline",
        ("resume", "digits"),
        2,
        ("no sweep of pipeline 'digits'",),
    ),
    Case(
        "resume-corrupt-sweep-json",
        ("resume", "{tmp}/corrupt_sweep"),
        2,
        ("corrupt_sweep", "sweep.json"),
    ),
    # ---- the console as a user sees it (a fresh process: pytest holds the root logger) ----
    Case(
        "error-after-the-data-loads-is-the-only-line",
        train("model.options.width=-3"),
        2,
        ("model.options.width must be an integer >= 1", "got -3"),
        mode="subprocess",
    ),
    Case(
        "train-file-store-is-the-only-line",  # refused before the data loads and says so
        ("train", "digits", "--tracking-uri", "file://{tmp}/filestore", "--set", "train.epochs=1"),
        2,
        ("tracking.uri 'file:///", "MLFLOW_ALLOW_FILE_STORE=true", "a sqlite:/// URI"),
        mode="subprocess",
    ),
    # ---- Ray cluster (a fresh process: the in-process Ray would be reused) ----
    Case(
        "address-unreachable",
        ("sweep", "digits", "--address", "127.0.0.1:1", "--tracking-uri", "{uri}"),
        2,
        ("--address '127.0.0.1:1'",),
        mode="subprocess",
    ),
]


@pytest.fixture(scope="module")
def existing_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sqlite MLflow store with one experiment, ``digits``, and no runs; returns the db."""
    from graft_hpo.tracking import ensure_experiment

    db = tmp_path_factory.mktemp("store") / "mlflow.db"
    ensure_experiment(f"sqlite:///{db}", "digits")
    return db


def _runs(db: Path) -> int:
    with sqlite3.connect(db) as connection:
        return int(connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0])


def _write_files(folder: Path) -> None:
    for name, text in FILES.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _in_process(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()  # drop what fixtures printed
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _fresh_process(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    home = cwd / "home"  # Ray's dashboard probes cloud metadata without this file (conftest.py)
    home.mkdir()
    (home / "ray_bootstrap_config.yaml").write_text("provider:\n  type: local\n")
    command = [sys.executable, "-m", "graft_hpo.cli", *argv]
    env = {**os.environ, "HOME": str(home)}
    with subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so a hang is killed with its children
    ) as proc:
        try:
            out, err = proc.communicate(timeout=HANG_GUARD_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail(f"graft-hpo {' '.join(argv)} still running after {HANG_GUARD_S} s")
    return proc.returncode, out, err


def _forbid_ray(*args: object, **kwargs: object) -> None:
    raise AssertionError("bad input must be refused before Ray starts")


def _param(case: Case) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
    return pytest.param(case, id=case.id, marks=marks)


def test_the_table_has_distinct_ids_and_enough_cases() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    assert sum(case.xfail is None for case in CASES) >= 30


@pytest.mark.parametrize("case", [_param(case) for case in CASES])
def test_bad_input_is_refused_in_one_line(
    case: Case,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    _write_files(tmp_path)
    places = {"{tmp}": str(tmp_path), "{uri}": f"sqlite:///{tmp_path}/mlruns/mlflow.db"}
    store = None
    if any("{store}" in arg for arg in case.argv):
        store = request.getfixturevalue("existing_store")
        places["{store}"] = f"sqlite:///{store}"
    argv = list(case.argv)
    for placeholder, value in places.items():
        argv = [arg.replace(placeholder, value) for arg in argv]
    monkeypatch.chdir(tmp_path)  # the default store and sweep folder would go under mlruns/
    if case.mode == "ray":
        request.getfixturevalue("ray_local")
    elif case.mode == "cli":
        monkeypatch.setattr("graft_hpo.sweep._prepare.start_ray", _forbid_ray)

    start = time.perf_counter()
    if case.mode == "subprocess":
        code, out, err = _fresh_process(argv, tmp_path)
    else:
        code, out, err = _in_process(argv, capsys)
    seconds = time.perf_counter() - start

    lines = [line for line in err.splitlines() if line.strip()]
    assert code == case.exit, err
    assert "Traceback" not in err, err
    assert lines, "no error line on stderr"
    last = lines[-1]
    assert last.startswith(f"graft-hpo {argv[0]}: error: "), err
    assert len(lines) == 1, err  # the error alone: no log line before it
    missing = [needle for needle in case.needles if needle not in last]
    assert not missing, f"{missing} not in {last!r}"
    if case.mode != "subprocess":
        assert out == ""  # stdout is for results
    assert not (tmp_path / "mlruns").exists()
    assert (tmp_path / "afile").is_file()
    if store is not None:
        assert _runs(store) == 0
    assert seconds < HANG_GUARD_S
