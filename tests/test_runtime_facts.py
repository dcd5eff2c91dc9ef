"""A runtime's devices and precisions are declared once (:mod:`hwnas_profilers.runtimes`):
every registered emitter builds for what its profiler measures, and no more, and both
sides refuse the rest. These check the declarations and the requests only (no runtime)."""

from dataclasses import dataclass

import pytest

from hwnas.engines import EngineError, available_emitters, emitter_class
from hwnas_profilers import Settings, Unsupported, available_backends
from hwnas_profilers.registry import backend_class
from hwnas_profilers.runtimes import PRECISIONS, RUNTIMES, all_precisions, narrowed


@pytest.mark.parametrize("name", available_emitters())
def test_an_emitter_builds_what_its_profiler_measures(name):
    em = emitter_class(name)
    assert em.profiler in available_backends(), f"{name} names no registered profiler"
    facts = backend_class(em.profiler).device_precisions
    assert em.precisions, name
    for dev, precs in em.precisions.items():
        assert dev in facts, f"{name} builds for {dev}, which {em.profiler} does not measure"
        assert precs == facts[dev], f"{name} on {dev}: {precs} but {em.profiler}: {facts[dev]}"
    if em.profiler in RUNTIMES:  # a built-in runtime: its one entry, on the emitter's devices
        assert dict(em.precisions) == dict(narrowed(RUNTIMES[em.profiler], em.device_kinds))


@pytest.mark.parametrize("name", available_backends())
def test_a_profiler_reads_its_runtimes_entry(name):
    cls = backend_class(name)
    if name in RUNTIMES:
        assert cls.device_precisions is RUNTIMES[name]
    assert cls.precisions == all_precisions(cls.device_precisions)
    assert set(cls.precisions) <= set(PRECISIONS)


def test_onnxruntime_has_a_provider_for_each_device_it_measures():
    from hwnas_profilers.backends.onnxruntime import PROVIDERS, OnnxRuntimeProfiler

    assert list(PROVIDERS) == list(OnnxRuntimeProfiler.device_precisions)


def test_the_facts_cannot_be_changed_in_place():
    with pytest.raises(TypeError):
        RUNTIMES["torch"]["cpu"] = PRECISIONS  # type: ignore[index]


def _profiler_request_only(name: str, settings: Settings):
    """The registered profiler with its runtime check left out but the precision check."""

    @dataclass
    class Unchecked(backend_class(name)):  # type: ignore[misc, valid-type]
        def check(self) -> None:
            self.check_precision()

        def devices(self) -> list[str]:
            return list(self.device_precisions)

    return Unchecked(settings)


def _emitter_request_only(name: str, device: str, precision: str):
    @dataclass
    class Unchecked(emitter_class(name)):  # type: ignore[misc, valid-type]
        def check(self) -> None:
            pass

    return Unchecked(device=device, precision=precision)


@pytest.mark.parametrize("name", sorted(RUNTIMES))
def test_both_sides_refuse_a_precision_the_runtime_does_not_run(name):
    emitters = [e for e in available_emitters() if emitter_class(e).profiler == name]
    for dev, precs in RUNTIMES[name].items():
        for p in PRECISIONS:
            if p in precs:
                _profiler_request_only(name, Settings(device=dev, precision=p))
                continue
            with pytest.raises(Unsupported, match=f"precision {p} on device {dev}"):
                _profiler_request_only(name, Settings(device=dev, precision=p))
            for e in emitters:
                if dev in emitter_class(e).precisions:
                    with pytest.raises(EngineError, match=f"does not support precision {p}"):
                        _emitter_request_only(e, dev, p)


def test_an_emitter_narrower_than_its_runtime_refuses_the_other_devices():
    with pytest.raises(EngineError, match="built for cpu, cuda, not device 'tensorrt'"):
        _emitter_request_only("onnxruntime", "tensorrt", "fp32")
