"""graft-hpo's vocabulary: every metric, tag and report key a run carries, defined once.

The same names in MLflow runs, Ray results and the JSON graft-hpo prints (DESIGN.md section 3),
so a query written against one works against the others. Every module imports them from here;
``tests/test_vocabulary.py`` holds it (no other module spells one as a string literal).
"""

from __future__ import annotations

# ---- metrics: on every trial run, and in every report to Ray
VAL_ACC = "val_acc"  # fraction in [0, 1]
VAL_LOSS = "val_loss"
TRAIN_LOSS = "train_loss"
TEST_ACC = (
    "test_acc"  # a trial trained to the end (or a retraining), scored once on the test split
)
TEST_LOSS = "test_loss"  # ... and its loss there
CO2_KG = "co2_kg"  # kg CO2eq
ENERGY_KWH = "energy_kwh"
CPU_ENERGY_KWH = "cpu_energy_kwh"
GPU_ENERGY_KWH = "gpu_energy_kwh"
RAM_ENERGY_KWH = "ram_energy_kwh"
DURATION_S = "duration_s"
SELECTION_S = "selection_s"  # seconds spent selecting subsets
CHECKPOINT_S = "checkpoint_s"  # seconds spent writing trial checkpoints
TRAIN_S = "train_s"  # seconds in the training loop: epochs, selection and validation
EPOCH_S = "epoch_s"  # seconds of one epoch (a step of the run's history; not a final metric)
FRACTION_EFFECTIVE = "fraction_effective"  # share trained on per epoch, warm-up included
EPOCHS_COMPLETED = "epochs_completed"

METRICS = (
    VAL_ACC,
    VAL_LOSS,
    TRAIN_LOSS,
    CO2_KG,
    ENERGY_KWH,
    CPU_ENERGY_KWH,
    GPU_ENERGY_KWH,
    RAM_ENERGY_KWH,
    DURATION_S,
    SELECTION_S,
    FRACTION_EFFECTIVE,
    EPOCHS_COMPLETED,
)
ENERGY_PARTS = (CPU_ENERGY_KWH, GPU_ENERGY_KWH, RAM_ENERGY_KWH)  # energy_kwh, part by part
# what codecarbon measures (an objective, a scheduler or a policy on them needs emissions)
EMISSIONS_METRICS = (CO2_KG, ENERGY_KWH, *ENERGY_PARTS)
# every final metric a sweep's trial run may hold (test_*: trained to the end; checkpoint_s)
TRIAL_METRICS = (*METRICS, TRAIN_S, TEST_ACC, TEST_LOSS, CHECKPOINT_S)

# ---- tags of a trial run
TAG_SWEEP_ID = "sweep_id"
TAG_STRATEGY = "strategy"
TAG_ROLE = "graft_hpo.role"  # "sweep" on a sweep's parent run, "trial" on its trial runs
TAG_RAY_TRIAL = "ray_trial_id"  # the trial's id in Ray Tune (what Ray's console prints)
TAG_NODE = "node"  # the host its (last) attempt ran on
TAG_NODE_ID = "node_id"  # ... and that host's Ray node id
TAG_OPTUNA_TRIAL = "optuna_trial_number"  # its trial's number in the study
TAG_EARLY_STOPPED = "early_stopped"  # "true" when a scheduler stopped the trial early
TAG_STOP_REASON = "stop_reason"  # why training stopped before train.epochs (also the sweep's)
TAG_KILLED_REASON = "killed_reason"  # why the sweep closed the run KILLED (an interruption)
TAG_ERROR = "error"  # why the trial failed (one line)
TAG_ATTEMPTS = "attempts"  # on a trial run its worker lost: attempts so far (this one included)
TAG_RESUMED_FROM = "resumed_from_epoch"  # ... and the epochs its last attempt went on from
TAG_PARETO = "pareto"  # "true" on the winners of a sweep, "false" on its other trials
TAG_SELECTED = "selected"  # "true" on the run a sweep's final stage chose
TAG_EMISSIONS_ERROR = "emissions_error"  # codecarbon failed: why (the run has no energy)
TAG_EMISSIONS_ESTIMATED = "emissions_estimated"  # "true": mostly the duration x power floor
TAG_EMISSIONS_ESTIMATED_PARTS = "emissions_estimated_parts"  # ... for these parts (cpu,ram)
TAG_GPU_ATTRIBUTED = "gpu_energy_attributed"  # how a shared GPU's energy was split (docs/gpu/)

# ---- tags of a sweep's parent run
TAG_OBJECTIVES = "objectives"  # JSON [["val_acc", "max"], ...]
TAG_SELECTED_RUN = "selected_run_id"  # the run its final stage chose ...
TAG_SELECTED_POLICY = "selected_policy"  # ... by this policy
TAG_MODEL_URI = "model_uri"  # the model its final stage retrained and registered

# ---- tags of a retraining run and of its registered model
TAG_SOURCE_RUN = "source_run_id"
TAG_SOURCE_SWEEP = "source_sweep_id"  # not sweep_id: a retraining is no trial of the sweep
TAG_LINEAGE = "lineage"  # JSON: sweep, source run, strategies and fractions, energy and CO2

# ---- MLflow's own tags
TAG_PARENT_RUN_ID = "mlflow.parentRunId"  # nests a run under another, across processes
TAG_NOTE = "mlflow.note.content"  # a run's description (markdown) in MLflow's UI
# What an experiment is for (MLflow 3): model training, "Machine learning" in MLflow's UI (the
# other main kind is "genai_development", traces of LLM apps).
TAG_EXPERIMENT_KIND = "mlflow.experimentKind"
EXPERIMENT_KIND_TRAINING = "custom_model_development"

# ---- a trial's reports to Ray (besides its metrics), and Optuna's user attribute
ATTR_MLFLOW_RUN = "mlflow_run_id"  # in every report, and on the Optuna trial: its MLflow run
EPOCHS_DONE = "epochs_done"  # on every epoch's report: the scheduler's clock (not the final one)
DONE_KEY = "trial_done"  # on a trial's final report only: its absence means stopped early
FAILED_KEY = "trial_failed"  # a trial that failed by itself: why (Ray retries exceptions only)
