"""The pipeline configuration: plain, frozen data (never models, losses or devices).

A pipeline YAML file maps one-to-one onto :class:`PipelineConfig`. Every field's dotted path
(``selection.fraction``) is also its Optuna parameter name and its MLflow param name.
Constraints live in :mod:`graft_hpo.config._validate`; this module only declares the shape and
the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Any

from graft_hpo._names import CO2_KG
from graft_hpo._names import VAL_ACC


@dataclass(frozen=True)
class DataConfig:
    name: str = "mnist5k"  # registry name (mnist5k, digits, cifar10, ...) or "pkg.mod:fn"
    val_fraction: float = 0.2  # share of the training pool held out for validation, in (0, 1)
    test_fraction: float = 0.2  # share held out for testing where the data has no test split
    root: str | None = None  # folder of torchvision data sets; None -> ~/.cache/graft-hpo/data
    download: bool = False  # let torchvision download missing files
    options: dict[str, Any] = field(default_factory=dict)  # passed to the data set's builder
    # symmetric label noise: this share of the train and of the validation split (not test)
    # gets a wrong label, uniform over the other classes, seeded by train.seed; in [0, 1)
    label_noise: float = 0.0


@dataclass(frozen=True)
class ModelConfig:
    name: str = "cnn"  # registry name (mlp, cnn, resnet18, torchvision names) or "pkg.mod:factory"
    options: dict[str, Any] = field(default_factory=dict)  # passed to the factory (width, ...)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10  # in [1, 100000]
    batch_size: int = 128  # in [1, 1000000]
    optimizer: str = "sgd"  # sgd | adamw
    lr: float = 0.05  # > 0
    momentum: float = 0.9  # in [0, 1); sgd only
    weight_decay: float = 5.0e-4  # >= 0
    scheduler: str = "cosine"  # cosine (over the real number of steps) | none
    grad_clip: float = 0.0  # max gradient norm; 0 disables clipping
    seed: int = 0  # seeds torch, numpy and python in the trial, and every selector
    device: str = "auto"  # auto (cuda if present, else cpu) | cpu | cuda | cuda:N
    eval_every: int = 1  # validate every N epochs and after the last, in [1, 100000]
    # CUDA: the train and validation data live on the device when they take at most this share
    # of its free memory (augmentation and subset gathering run there; no batch crosses the
    # bus); 0 keeps them on the host. In [0, 1]; no effect on the CPU.
    data_on_device: float = 0.25
    # auto (channels_last on the CPU, contiguous on CUDA) | channels_last | contiguous
    memory_format: str = "auto"
    compile: bool = False  # torch.compile the training forward pass (benchmarks/gpu_check.py)
    # in a sweep, checkpoint the trial into the sweep's storage every N epochs and at every
    # scheduler rung: a trial whose worker dies goes on from there. null: as often as costs at
    # most 2% of the trial's time (measured as it goes); 0: never. In [0, 100000]
    checkpoint_every: int | None = None


@dataclass(frozen=True)
class SelectionConfig:
    strategy: str = "graft"  # graft | random | full | infobatch
    fraction: float = 0.3  # budget: share of the training set per subset epoch, in (0, 1]
    select_every: int = 2  # epochs between re-selections, in [1, 100000]
    warm_start_epochs: int = 1  # full-data epochs before the first selection, in [0, 100000]
    alignment_threshold: float = 0.9  # graft: grow a subset until cosine >= this, in (0, 1]
    features: str = "embedding"  # graft: embedding (penultimate layer) | raw (flattened inputs)
    rank: int | None = None  # graft: max feature rank per batch; None -> the subset size
    batch_size: int | None = None  # graft: samples per selection batch; None -> train.batch_size
    stratify: bool = True  # graft: selection batches within classes: every class its share
    weighted: bool = False  # graft: train with least-squares gradient-matching weights
    maxvol_tol: float = 1.05  # graft: maxvol swap tolerance, >= 1
    pool: float | None = None  # graft: score a random pool of pool x budget samples, >= 1
    # graft: who selects. trial: each trial, with its own model (warm-up, then rounds on
    # schedule). sweep: the sweep ranks the data once with a proxy model before any trial
    # (GraftSelector.rank_dataset); each trial trains on its budget's prefix of that ranking
    # and pays no selection of its own. Outside a sweep, the trial ranks first itself.
    scope: str = "trial"  # trial | sweep
    # infobatch (Qin et al. 2024): each epoch leaves out this share of the below-mean-loss
    # samples and scales the kept ones' loss by 1 / (1 - prune_ratio); the last `anneal`
    # share of the epochs trains on all the data
    prune_ratio: float = 0.5  # infobatch: in [0, 1)
    anneal: float = 0.125  # infobatch: in [0, 1]
    proxy_epochs: int = 2  # scope=sweep: full-data epochs of the proxy before ranking, in [0, 100]
    # graft: before each round (or the sweep's ranking), leave likely-mislabelled samples out
    # of the candidates, judged by the current model (the proxy), at most half of a class, so
    # the share adapts to the data (docs/noise.md). chance: the model rates the label below
    # 1/classes | misfit: it predicts another class (also drops a weak model's hard samples)
    # | knn: fewer than 2 of its 10 nearest neighbours in the model's embedding share its label
    # | none: GRAFT as published. knn measured best on clean and noisy data (docs/noise.md)
    noise_filter: str = "knn"
    # graft: after the noise filter, leave out each candidate that has an earlier one (lower
    # dataset index) of its label at cosine similarity >= dedup in the model's embedding
    # (SemDeDup), at most half of a class; the sweep's ranking puts them last. In (0, 1];
    # null: off (docs/noise.md)
    dedup: float | None = None


@dataclass(frozen=True)
class EmissionsConfig:
    enabled: bool = True  # measure energy and CO2 with codecarbon's offline tracker
    country_iso_code: str = "USA"  # ISO 3166-1 alpha-3 code of the grid's country
    measure_power_secs: float = 1.0  # codecarbon's sampling period, seconds


@dataclass(frozen=True)
class TrackingConfig:
    uri: str | None = None  # None -> $MLFLOW_TRACKING_URI, else sqlite in ./mlruns
    experiment: str | None = None  # None -> the pipeline's name


@dataclass(frozen=True)
class ObjectiveConfig:
    metric: str  # a final metric name (val_acc, co2_kg, energy_kwh, duration_s, ...)
    mode: str  # max | min


@dataclass(frozen=True)
class SchedulerConfig:
    # asha: Ray's ASHA on `metric` | moasha: multi-objective ASHA on search.objectives
    type: str = "asha"
    metric: str = VAL_ACC  # the one metric ASHA compares at each rung (not read by moasha)
    mode: str = "max"  # max | min (asha only)
    grace_period: int = 1  # epochs before a trial can be stopped, in [1, 100000]
    reduction_factor: float = 3.0  # > 1


def _default_objectives() -> list[ObjectiveConfig]:
    return [ObjectiveConfig(VAL_ACC, "max"), ObjectiveConfig(CO2_KG, "min")]


@dataclass(frozen=True)
class SearchConfig:
    space: str | None = None  # bundled space name or path to a search-space YAML
    objectives: list[ObjectiveConfig] = field(default_factory=_default_objectives)
    sampler: str = "tpe"  # one of _validate.SAMPLERS: tpe | nsga2 | gp | random
    trials: int = 12  # in [1, 1000000]
    seed: int = 0  # seeds the sampler
    max_concurrent: int = 2  # trials running at once, in [1, 10000]
    scheduler: SchedulerConfig | None = None  # None: every trial runs all its epochs
    # what Optuna is told of a trial the scheduler stopped: projected (cost objectives scaled to
    # train.epochs, accuracy as reached) | complete (truncated values) | pruned (no values)
    stopped_report: str = "projected"
    storage: str | None = None  # Optuna RDB URL all nodes reach; None -> sqlite in the sweep dir
    # where Ray keeps the sweep's trial checkpoints and experiment state, in a folder named by
    # the sweep id: an absolute path every node mounts, or a URI Ray's storage reads (s3://,
    # gs://). None -> the sweep folder (enough on one machine, or when it is shared)
    checkpoint_storage: str | None = None
    fail_fast: bool = False  # at the first failed trial start no new ones (running ones finish)
    # a trial whose worker or node dies restarts (from its last checkpoint) up to this many
    # times; one that fails by itself (NaN loss, plug-in error) is not retried. In [0, 100]
    max_failures: int = 2
    # Stop scheduling new trials once the finished trials' measured total reaches a budget;
    # running trials finish. None: no budget.
    co2_budget_kg: float | None = None  # > 0
    energy_budget_kwh: float | None = None  # > 0
    time_budget_s: float | None = None  # > 0, wall time since the sweep started


@dataclass(frozen=True)
class ResourcesConfig:
    cpu: float = 1.0  # CPUs per trial, > 0
    gpu: float = 0.0  # GPUs per trial, >= 0 (fractions share a GPU)


@dataclass(frozen=True)
class SelectConfig:
    """Final stage: which point of the sweep's Pareto front becomes the model."""

    # max:METRIC | min:METRIC | knee | budget:METRIC<=X | floor:METRIC>=Y
    policy: str = "knee"


@dataclass(frozen=True)
class RetrainConfig:
    """Final stage: train the selected trial's configuration again, log and register it."""

    epochs: int | None = None  # >= 1; None keeps the trial's train.epochs
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted keys, e.g. selection.strategy
    register: str | None = None  # MLflow registered-model name; None logs without registering
    evaluate_test: bool = True  # evaluate on the held-out test split


@dataclass(frozen=True)
class PipelineConfig:
    name: str = "pipeline"  # also the default MLflow experiment name
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    emissions: EmissionsConfig = field(default_factory=EmissionsConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    select: SelectConfig | None = None  # final stage of a sweep; None: stop at the front
    retrain: RetrainConfig | None = None  # after select: retrain and register the choice
    # folders searched first for "module:attr" plug-ins (relative: from the pipeline file);
    # empty and naming a plug-in: the pipeline file's folder, then the working directory
    plugin_path: list[str] = field(default_factory=list)
