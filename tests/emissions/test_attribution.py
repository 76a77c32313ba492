"""GPU energy attribution: the arithmetic on hand-built NVML samples, and its use in a
measurement with a stand-in sampler (the real sampler is exercised by the ``gpu`` test)."""

from __future__ import annotations

import os

import pytest

from graft_hpo.config import EmissionsConfig
from graft_hpo.emissions import EmissionsResult
from graft_hpo.emissions import _measure
from graft_hpo.emissions import gpu_index
from graft_hpo.emissions import measure_emissions
from graft_hpo.emissions._attribution import J_PER_KWH
from graft_hpo.emissions._attribution import GpuAttribution
from graft_hpo.emissions._attribution import GpuSample
from graft_hpo.emissions._attribution import attribute_gpu_energy
from graft_hpo.emissions._attribution import interval_energy_j
from graft_hpo.emissions._attribution import interval_share
from graft_hpo.emissions._attribution import with_attributed_gpu


def test_interval_energy_from_the_counter_else_from_power() -> None:
    a = GpuSample(10.0, energy_mj=5_000.0, power_w=100.0)
    b = GpuSample(12.0, energy_mj=9_000.0, power_w=300.0)
    assert interval_energy_j(a, b) == 4.0  # the counter wins over power x time (400 J)
    reset = GpuSample(12.0, energy_mj=1_000.0, power_w=300.0)
    assert interval_energy_j(a, reset) == 400.0  # counter went back: trapezoid of powers
    assert interval_energy_j(GpuSample(0.0), GpuSample(3.0, power_w=50.0)) == 150.0
    assert interval_energy_j(GpuSample(0.0), GpuSample(3.0)) == 0.0


@pytest.mark.parametrize(
    ("sample", "share", "rule"),
    [
        (GpuSample(0, util={1: 30.0, 2: 90.0}, memory={1: 1.0, 2: 1.0}), 0.25, "utilisation"),
        (GpuSample(0, util={2: 90.0}, memory={1: 5.0, 2: 1.0}), 0.0, "utilisation"),
        (GpuSample(0, util={1: 0.0, 2: 0.0}, memory={1: 3.0, 2: 1.0}), 0.75, "memory"),
        (GpuSample(0, util={}, memory={1: 0.0, 2: 0.0, 3: 0.0}), 1 / 3, "equal"),
        (GpuSample(0, util={7: 50.0}, memory={7: 1.0, 8: 1.0}), 0.0, "absent"),
        (GpuSample(0), 1.0, "whole"),
    ],
)
def test_interval_share_rules(sample: GpuSample, share: float, rule: str) -> None:
    got, used = interval_share(sample, 1)
    assert got == pytest.approx(share) and used == rule


def test_a_process_nvml_never_lists_gets_an_equal_share() -> None:
    """In a container NVML reports host PIDs: no sample names this process."""
    sample = GpuSample(0, util={7: 50.0}, memory={7: 1.0, 8: 1.0})
    assert interval_share(sample, 1, visible=False) == (0.5, "equal")
    samples = [GpuSample(0.0, power_w=100.0), GpuSample(2.0, power_w=100.0, memory={7: 1, 8: 1})]
    a = attribute_gpu_energy(samples, pid=1)
    assert a.energy_j == pytest.approx(100.0) and a.method == "equal" and a.shared


def test_attribution_over_a_run_matches_a_hand_computation() -> None:
    """Three intervals of 100, 200 and 50 J: process 1 alone (2 not on the device yet), then
    at 1/4 of the utilisation, then idle but holding 2/3 of the memory."""
    samples = [
        GpuSample(0.0, energy_mj=0.0),
        GpuSample(1.0, energy_mj=100_000.0, util={1: 80.0}, memory={1: 4.0}),
        GpuSample(2.0, energy_mj=300_000.0, util={1: 20.0, 2: 60.0}, memory={1: 4.0, 2: 4.0}),
        GpuSample(3.0, energy_mj=350_000.0, util={}, memory={1: 4.0, 2: 2.0}),
    ]
    a = attribute_gpu_energy(samples, pid=1)
    assert a.device_j == pytest.approx(350.0)
    assert a.energy_j == pytest.approx(100.0 + 200.0 / 4 + 50.0 * 2 / 3)
    assert a.shared and a.method == "utilisation"  # 300 of the 350 J
    b = attribute_gpu_energy(samples, pid=2)
    assert a.energy_j + b.energy_j == pytest.approx(a.device_j)  # nothing lost or doubled
    assert a.share == pytest.approx(a.energy_j / 350.0)


def test_shares_of_every_process_add_up_to_the_device() -> None:
    """Four processes with drifting utilisation and memory: the parts sum to the whole."""
    samples = [GpuSample(0.0, power_w=400.0)]
    for i in range(1, 30):
        util = {pid: float((pid * 7 + i * 3) % 11) for pid in (11, 12, 13, 14)}
        memory = {pid: float(pid + i % 3) for pid in (11, 12, 13, 14)}
        samples.append(GpuSample(i * 0.5, power_w=300.0 + 10 * (i % 4), util=util, memory=memory))
    parts = [attribute_gpu_energy(samples, pid).energy_j for pid in (11, 12, 13, 14)]
    device = attribute_gpu_energy(samples, 11).device_j
    assert sum(parts) == pytest.approx(device)
    assert all(0 < p < device for p in parts)


def test_a_process_alone_is_not_shared_and_keeps_everything() -> None:
    samples = [
        GpuSample(t, energy_mj=1000.0 * t, util={5: 50.0}, memory={5: 1.0}) for t in range(4)
    ]
    a = attribute_gpu_energy(samples, pid=5)
    assert not a.shared and a.share == 1.0 and a.energy_j == pytest.approx(3.0)
    assert attribute_gpu_energy(samples[:1], pid=5) == GpuAttribution(0.0, 0.0, False, "whole")


def test_with_attributed_gpu_charges_nvmls_joules_at_codecarbons_pue() -> None:
    # codecarbon at PUE 1.2: each part holds it (1, 4 and 1 kWh drawn: 1.2 + 4.8 + 1.2), the
    # total is their sum (test_codecarbon.py holds that); NVML's 1 kWh share does not
    r = EmissionsResult(
        energy_kwh=7.2,
        cpu_energy_kwh=1.2,
        gpu_energy_kwh=4.8,
        ram_energy_kwh=1.2,
        co2_kg=3.6,
        gpu_power_w=480.0,
    )
    a = GpuAttribution(
        energy_j=1.0 * J_PER_KWH, device_j=4.0 * J_PER_KWH, shared=True, method="memory"
    )
    out = with_attributed_gpu(r, a, pue=1.2)
    assert out.gpu_energy_kwh == pytest.approx(1.2)  # a quarter of the device, as charged
    assert out.energy_kwh == pytest.approx(1.2 + 1.2 + 1.2)
    assert out.co2_kg == pytest.approx(3.6 * 3.6 / 7.2)  # same grid: CO2 follows the total
    assert out.gpu_power_w == pytest.approx(120.0)
    assert out.gpu_energy_share == 0.25 and out.gpu_attribution == "memory"
    assert out.cpu_energy_kwh == 1.2 and out.ram_energy_kwh == 1.2
    assert out.metrics()["gpu_energy_share"] == 0.25
    # at PUE 1 the attributed joules are the GPU part as they are
    plain = with_attributed_gpu(EmissionsResult(energy_kwh=6.0, gpu_energy_kwh=4.0), a)
    assert (plain.gpu_energy_kwh, plain.energy_kwh) == pytest.approx((1.0, 3.0))
    unmeasured = EmissionsResult(error="disabled")
    assert with_attributed_gpu(unmeasured, a) is unmeasured


class _FakeSampler:
    """Stands in for NvmlSampler: another process used the GPU 3x as much as this one."""

    def __init__(self, device: int, *, period_s: float = 1.0) -> None:
        me = os.getpid()
        self.device = device
        self._samples = [
            GpuSample(0.0, energy_mj=0.0),
            GpuSample(1.0, energy_mj=360_000.0, util={me: 25.0, me + 1: 75.0}),
        ]

    def start(self) -> _FakeSampler:
        return self

    def samples(self) -> list[GpuSample]:
        return self._samples

    def stop(self) -> list[GpuSample]:
        return self._samples


def test_a_measurement_on_a_shared_gpu_is_charged_its_share(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_measure, "NvmlSampler", _FakeSampler)
    cfg = EmissionsConfig(country_iso_code="USA", measure_power_secs=30.0)
    forced = {"force_cpu_power": 10.0, "force_ram_power": 5.0}
    with measure_emissions(cfg, tracker_kwargs=forced) as plain:
        pass
    with measure_emissions(cfg, tracker_kwargs=forced, gpu_device=0) as shared:
        pass
    assert plain.result.gpu_energy_share is None and plain.result.gpu_attribution is None
    r = shared.result
    assert r.error is None and r.gpu_attribution == "utilisation"
    assert r.gpu_energy_share == pytest.approx(0.25)
    assert r.gpu_energy_kwh == pytest.approx(90.0 / J_PER_KWH)  # a quarter of 360 J
    parts = (r.cpu_energy_kwh or 0.0) + r.gpu_energy_kwh + (r.ram_energy_kwh or 0.0)
    assert r.energy_kwh == pytest.approx(parts, rel=1e-6)


def test_gpu_index_of_device_names() -> None:
    assert gpu_index("cuda:3") == 3 and gpu_index("cpu") is None and gpu_index("meta") is None


def test_a_trial_on_a_shared_gpu_is_tagged_and_charged_its_share(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """run_trial passes its CUDA device to the measurement (here a stand-in for one, and for
    NVML) and tags the run with the attribution rule."""
    from graft_hpo import trial
    from graft_hpo.config import load_pipeline

    monkeypatch.setattr(_measure, "NvmlSampler", _FakeSampler)
    monkeypatch.setattr(trial, "gpu_index", lambda device: 0)
    config = load_pipeline("digits", ["train.epochs=1", "train.device=cpu"])
    result = trial.run_trial(config, tracking=False)
    assert result.status == "FINISHED", result.error
    assert result.tags["gpu_energy_attributed"] == "utilisation"
    assert result.metrics["gpu_energy_share"] == pytest.approx(0.25)
    assert result.metrics["gpu_energy_kwh"] == pytest.approx(90.0 / J_PER_KWH)
