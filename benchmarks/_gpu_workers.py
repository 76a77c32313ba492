"""Trials that share one device, each in its own process, as Ray runs trials with
``resources.gpu`` = 1/k; and the device's own energy over the time they measured.

A :class:`WorkerPool` starts its processes once (like Ray's reused workers, so no trial pays
for starting Python, torch or CUDA), then runs rounds of k trials that start together.
:class:`DeviceEnergy` reads the GPU's energy counter through NVML from the parent, which never
touches CUDA itself, so the only processes on the device are the trials.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from benchmarks._gpu_parts import Clock

__all__ = [
    "DeviceEnergy",
    "WorkerPool",
    "energy_in_windows",
    "merge_windows",
    "part_compile",
    "part_concurrency",
]

Json = dict[str, Any]
J_PER_KWH = 3.6e6
# the bundled cifar10 pipeline's training samples per trial: 45,000 images, 2 full epochs,
# then 28 at budget 0.3 (pipelines/cifar10.yaml); what torch.compile must pay back within
CIFAR10_TRIAL_SAMPLES = 45_000 * (2 + 28 * 0.3)


def _serve(conn: Any) -> None:
    """A worker's loop: run what the parent sends until it sends None."""
    os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")
    import torch

    from benchmarks._ceiling import measure_ceiling
    from graft_hpo.config import load_pipeline
    from graft_hpo.trial import run_trial
    from graft_hpo.trial import set_up_process

    while (task := conn.recv()) is not None:
        if task["kind"] == "ceiling":
            args = dict(task["args"], device=torch.device(task["args"]["device"]))
            conn.send(measure_ceiling(**args))
            continue
        config = load_pipeline(task["pipeline"], task["overrides"])
        set_up_process(config)  # the worker's one-off costs, outside the trial
        conn.send("ready")
        conn.recv()  # go
        start = time.time()
        result = run_trial(config, tracking=False)
        conn.send(
            {
                "pid": os.getpid(),
                "start": start,
                "end": time.time(),
                "status": result.status,
                "error": result.error,
                "metrics": result.metrics,
                "tags": result.tags,
            }
        )


class WorkerPool:
    """``size`` spawned worker processes (see the module docstring)."""

    def __init__(self, size: int) -> None:
        ctx = mp.get_context("spawn")
        self._conns = []
        self._procs = []
        for _ in range(size):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(child,), daemon=True)
            proc.start()
            self._conns.append(parent)
            self._procs.append(proc)

    @property
    def size(self) -> int:
        """Workers still running."""
        return len(self._procs)

    def run_together(
        self, pipeline: str, overrides: Sequence[str], k: int
    ) -> tuple[float, float, list[dict[str, Any]]]:
        """k identical trials started at once on k workers; ``(start, end, results)``.

        Every worker first builds its config and pays its one-off costs, then all start
        together; ``start`` is that moment and ``end`` the last one's finish (``time.time()``).
        """
        conns = self._conns[:k]
        for conn in conns:
            conn.send({"kind": "trial", "pipeline": pipeline, "overrides": list(overrides)})
        for conn in conns:
            if conn.recv() != "ready":
                raise RuntimeError("a worker did not get ready")
        start = time.time()
        for conn in conns:
            conn.send("go")
        results = [conn.recv() for conn in conns]
        return start, time.time(), results

    def ceiling(self, args: dict[str, Any], *, timeout_s: float) -> dict[str, Any] | None:
        """:func:`measure_ceiling` in the first worker, or None (that worker killed) when it
        takes longer than ``timeout_s``."""
        conn = self._conns[0]
        conn.send({"kind": "ceiling", "args": args})
        if conn.poll(timeout_s):
            result: dict[str, Any] = conn.recv()
            return result
        self._procs[0].kill()
        self._procs[0].join()
        del self._conns[0], self._procs[0]
        return None

    def close(self) -> None:
        """Stop every worker this pool started."""
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.send(None)
        for proc in self._procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
                proc.join()


class DeviceEnergy:
    """The energy counter of one NVML device, sampled every ``period_s`` on a thread.

    NVML's device index: the first of ``CUDA_VISIBLE_DEVICES`` if it is a number, else 0.
    ``available`` is False where NVML or the counter is missing (no GPU, an old one).
    """

    def __init__(self, period_s: float = 0.1) -> None:
        self.period_s = period_s
        self.samples: list[tuple[float, float]] = []  # (time.time(), mJ)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._nvml: Any = None
        try:
            import pynvml

            pynvml.nvmlInit()
            first = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip()
            handle = pynvml.nvmlDeviceGetHandleByIndex(int(first) if first.isdigit() else 0)
            pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        except Exception:
            return
        self._nvml, self._handle = pynvml, handle

    @property
    def available(self) -> bool:
        return self._nvml is not None

    def start(self) -> DeviceEnergy:
        if self.available:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            mj = float(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
            self.samples.append((time.time(), mj))
            if self._stop.wait(self.period_s):
                return

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None


def merge_windows(windows: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The union of time windows, as sorted disjoint windows.

    Example:
        >>> merge_windows([(5.0, 7.0), (0.0, 2.0), (1.0, 3.0)])
        [(0.0, 3.0), (5.0, 7.0)]
    """
    merged: list[tuple[float, float]] = []
    for a, b in sorted(windows):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def energy_in_windows(
    samples: Sequence[tuple[float, float]], windows: Sequence[tuple[float, float]]
) -> float | None:
    """Joules a cumulative counter ``(time, mJ)`` rose by within the union of ``windows``,
    interpolating linearly between samples; None with fewer than two samples.

    Example:
        >>> energy_in_windows([(0.0, 0.0), (10.0, 10_000.0)], [(1.0, 3.0), (2.0, 4.0)])
        3.0
    """
    if len(samples) < 2:
        return None
    times = [t for t, _ in samples]
    values = [v for _, v in samples]

    def at(t: float) -> float:
        if t <= times[0]:
            return values[0]
        if t >= times[-1]:
            return values[-1]
        i = next(j for j in range(1, len(times)) if times[j] >= t)
        w = (t - times[i - 1]) / (times[i] - times[i - 1])
        return values[i - 1] + w * (values[i] - values[i - 1])

    return sum(at(b) - at(a) for a, b in merge_windows(windows)) / 1000.0


def part_concurrency(args: argparse.Namespace, size: Json, clock: Clock, report: Json) -> None:
    spec = size["concurrency"]
    pool = report["_pool"]
    energy = DeviceEnergy().start()
    rows = report.setdefault("concurrency", [])
    try:
        warm = spec["n"] // 4
        # a discarded round on every worker: CUDA context, cuDNN, codecarbon's hardware probe
        pool.run_together("cifar10", _pack_overrides(args, "cnn", 1, warm, 1), pool.size)
        for model, epochs in spec["models"].items():
            for k in spec["ks"]:
                if clock.left() < 60 + 20 * k:
                    report["skipped"].append({"part": f"concurrency {model} x{k}", "why": "time"})
                    continue
                overrides = _pack_overrides(args, model, epochs, spec["n"], k)
                start, end, results = pool.run_together("cifar10", overrides, k)
                rows.append(_pack_row(model, k, start, end, results, energy))
                print(f"  concurrency {model} x{k}: {end - start:.1f}s", flush=True)
    finally:
        energy.stop()
    one = {r["model"]: r["trials_per_min"] for r in rows if r["trials"] == 1}
    for r in rows:
        r["speedup_vs_one"] = r["trials_per_min"] / one[r["model"]] if r["model"] in one else None


def _pack_overrides(args: argparse.Namespace, model: str, epochs: int, n: int, k: int) -> list:
    return [
        "data.name=synthetic",
        f"data.options={{n: {n}, shape: [3, 32, 32], num_classes: 10, noise: {args.noise}}}",
        "data.test_fraction=0.1",
        f"model.name={model}",
        f"train.epochs={epochs}",
        f"train.eval_every={epochs}",
        "train.batch_size=256",
        f"train.device={args.device}",
        "selection.strategy=full",
        "emissions.enabled=true",
        "emissions.measure_power_secs=0.5",
        f"resources.gpu={1 / k}",
    ]


def _pack_row(
    model: str, k: int, start: float, end: float, results: list[Json], energy: DeviceEnergy
) -> Json:
    windows = [(r["end"] - r["metrics"].get("duration_s", 0.0), r["end"]) for r in results]
    device_j = energy_in_windows(energy.samples, windows) if energy.available else None
    gpu_kwh = [r["metrics"].get("gpu_energy_kwh") for r in results]
    attributed = (
        sum(g for g in gpu_kwh if g is not None) * J_PER_KWH
        if all(g is not None for g in gpu_kwh)
        else None
    )
    return {
        "model": model,
        "trials": k,
        "resources_gpu": 1 / k,
        "wall_s": end - start,
        "trials_per_min": 60 * k / (end - start),
        "statuses": [r["status"] for r in results],
        "errors": [r["error"] for r in results if r["error"]],
        "val_acc": [r["metrics"].get("val_acc") for r in results],
        "gpu_energy_kwh": gpu_kwh,
        "gpu_energy_share": [r["metrics"].get("gpu_energy_share") for r in results],
        "gpu_energy_attributed": [r["tags"].get("gpu_energy_attributed") for r in results],
        "attributed_sum_j": attributed,
        "device_j": device_j,
        "attributed_over_device": attributed / device_j if attributed and device_j else None,
    }


def part_compile(args: argparse.Namespace, size: Json, clock: Clock, report: Json) -> None:
    if args.quick:
        report["skipped"].append({"part": "compile", "why": "--quick"})
        return
    common = {"device": args.device, "batch_size": size["batch_size"], "seconds": 3.0}
    common["model_name"] = "resnet18"
    box = min(150.0, clock.left() - 200)
    eager = report["_pool"].ceiling(dict(common, compile=False), timeout_s=60)
    compiled = report["_pool"].ceiling(dict(common, compile=True), timeout_s=max(box, 30))
    out: Json = {"eager": eager, "compiled": compiled, "time_box_s": box}
    if eager and compiled:
        per_sample = 1 / eager["samples_per_s"] - 1 / compiled["samples_per_s"]
        saved = CIFAR10_TRIAL_SAMPLES * per_sample
        out.update(
            compile_s=compiled["warmup_s"] - eager["warmup_s"],
            speedup=compiled["samples_per_s"] / eager["samples_per_s"],
            cifar10_trial_samples=CIFAR10_TRIAL_SAMPLES,
            saved_in_cifar10_trial_s=saved,
        )
        out["pays_for_itself"] = saved > out["compile_s"]
    report["compile"] = out
