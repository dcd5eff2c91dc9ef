"""One request vocabulary: ``run`` and ``export`` name int8 and its quantizer the same way,
``train`` and ``run`` name the training device the same way, and the old spellings still
parse (hidden from the help) to the same request."""

import pytest

from hwnas.cli import build_parser
from hwnas.errors import UserError

EXPORT = ["export", "a.json", "--supernet", "s.pt", "--backend", "openvino", "--out", "o"]
TRAIN = ["train", "--space", "tiny-32", "--out", "o"]


def _parsed(argv: list[str]) -> dict:
    ns = build_parser().parse_args(argv)
    return {k: getattr(ns, k, None) for k in ("quantization", "ptq_with", "train_device")}


@pytest.mark.parametrize("base, old, new", [
    (["run"], ["--int8", "qat"], ["--quantization", "qat"]),
    (["run"], ["--int8", "ptq"], ["--quantization", "ptq"]),
    (EXPORT, ["--qat"], ["--quantization", "qat"]),
    (EXPORT, ["--ptq", "nncf"], ["--ptq-with", "nncf"]),
    (TRAIN, ["--device", "cuda"], ["--train-device", "cuda"]),
])
def test_old_spellings_parse_to_the_new_request(base, old, new):
    assert _parsed(base + old) == _parsed(base + new) != _parsed(base)


def test_run_and_export_take_the_same_flags_and_hide_the_old_ones(run_cli):
    for argv, hidden in ((["run"], ("--int8",)), (EXPORT[:1], ("--qat ", "--ptq ")),
                         (["train"], ("--device",))):
        rc, out, _ = run_cli(*argv, "--help")
        assert rc == 0
        new = ("--train-device",) if argv == ["train"] else ("--quantization", "--ptq-with")
        assert all(f in out for f in new), out
        assert not any(h in out.replace("\n", " ") for h in hidden), out
    rc, out, _ = run_cli("run", "--help")
    assert "--train-device" in out


def test_defaults_are_kept():
    assert _parsed(["run"])["quantization"] == "auto"
    assert _parsed(EXPORT)["quantization"] == "ptq"  # export quantizes post-training unless asked
    assert _parsed(EXPORT)["ptq_with"] == _parsed(["run"])["ptq_with"] == "onnxruntime"


def test_auto_resolves_one_way_for_run_and_export():
    from hwnas.engines import wants_qat
    from hwnas.pipeline import RunConfig

    assert wants_qat("auto", "openvino", "int8") and not wants_qat("auto", "onnxruntime", "int8")
    assert wants_qat("qat", "onnxruntime", "int8") and not wants_qat("qat", "openvino", "fp32")
    assert not wants_qat("ptq", "openvino", "int8")
    with pytest.raises(UserError, match="qat, ptq or auto"):
        wants_qat("int4", "openvino", "int8")
    req = RunConfig(backend="openvino", precision="int8", quantization="ptq", ptq="nncf").request()
    assert not req.qat and req.ptq == "nncf"
    assert RunConfig(backend="openvino", precision="int8").request().qat
    for bad in ({"quantization": "yes"}, {"ptq": "tensorrt"}):
        with pytest.raises(UserError):
            RunConfig(**bad)


def test_export_refuses_qat_for_a_float_engine(run_cli):
    rc, _, err = run_cli(*EXPORT, "--quantization", "qat")
    assert rc == 2 and "--precision int8" in err and "Traceback" not in err
