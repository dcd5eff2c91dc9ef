"""One device form for profilers and emitters: a GPU's number (``cuda:1``) is parsed by
``hwnas_profilers.base`` alone, so an engine request takes every device a profiler's
``Settings`` takes. These check the request only (no runtime, no GPU is needed)."""

from dataclasses import dataclass

import pytest

from hwnas.engines import EngineError, available_emitters, emitter_class
from hwnas_profilers import ProfilerError, Settings
from hwnas_profilers.base import device_kind, device_number


def _unchecked(name: str) -> type:
    """The registered emitter with its runtime check left out: what remains is the check
    of the request (precision, device form, device kind)."""

    @dataclass
    class Unchecked(emitter_class(name)):  # type: ignore[misc, valid-type]
        def check(self) -> None:
            pass

    return Unchecked


GPU_EMITTERS = [(n, d) for n in available_emitters()
                for d in emitter_class(n).precisions if d != "cpu"]


@pytest.mark.parametrize("name, kind", GPU_EMITTERS)
def test_a_gpu_number_is_taken_wherever_its_device_is(name, kind):
    prec = emitter_class(name).precisions[kind][0]
    for target in (f"{kind}:1", f"{kind.upper()}:1", f"{kind}:12"):
        em = _unchecked(name)(device=target, precision=prec)
        assert em.device_kind == kind and em.device_index == device_number(target) > 0
        Settings(device=target, precision=prec)  # the profilers take it too
    assert _unchecked(name)(device=kind, precision=prec).device_index == 0


@pytest.mark.parametrize("name", available_emitters())
@pytest.mark.parametrize("target", ["cpu:1", "cuda:x", "cuda:-1", "cuda:", "cuda:1:2"])
def test_a_malformed_device_is_refused_by_both_sides_alike(name, target):
    with pytest.raises(ProfilerError, match="GPU's number"):
        Settings(device=target)
    with pytest.raises(EngineError, match="GPU's number"):
        _unchecked(name)(device=target, precision="fp32")


def test_an_unknown_device_kind_is_still_refused():
    with pytest.raises(EngineError, match="not device"):
        _unchecked("onnxruntime")(device="npu:1", precision="fp32")


def test_the_forms_parse_one_way():
    assert [device_kind(t) for t in ("cuda:1", "CUDA", "GPU.1", "cpu")] == \
        ["cuda", "cuda", "gpu", "cpu"]
    assert [device_number(t) for t in ("cuda:1", "GPU.2", "cpu", "cuda")] == [1, 2, 0, 0]
    assert Settings(device="cuda:3").device_kind == "cuda"


def test_onnxruntime_providers_are_one_table():
    from hwnas.engines.ort import OrtEmitter
    from hwnas_profilers.backends.onnxruntime import PROVIDERS, OnnxRuntimeProfiler, provider

    assert provider("cpu") == PROVIDERS["cpu"] == "CPUExecutionProvider"
    assert provider("cuda", 1) == ("CUDAExecutionProvider", {"device_id": 1})
    facts = OnnxRuntimeProfiler.device_precisions
    assert all(OrtEmitter.precisions[d] == facts[d] for d in OrtEmitter.precisions)


def test_openvino_names_a_gpu_number_its_own_way():
    from hwnas_profilers.backends.openvino import ov_device_name

    assert [ov_device_name(t) for t in ("gpu:1", "GPU.1", "cpu", "npu")] == \
        ["GPU.1", "GPU.1", "CPU", "NPU"]
    em = _unchecked("openvino")(device="gpu:1", precision="fp32")
    assert em.ov_device == "GPU.1"


@pytest.mark.filterwarnings("ignore:device table")  # measured on another machine: as shipped
def test_a_numbered_gpu_takes_its_devices_shipped_table():
    from hwnas.engines import default_table
    from hwnas.spaces import load_space

    space = load_space("tiny-32")
    table = default_table(space, "torch-aoti", "cuda", "fp32")
    assert table is not None
    assert default_table(space, "torch-aoti", "cuda:1", "fp32").meta == table.meta
