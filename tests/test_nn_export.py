import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from hwnas.arch import sample_architecture  # noqa: E402
from hwnas.nn import build_subnet, export_architecture, export_block  # noqa: E402
from hwnas.spaces import builtin_spaces, load_space  # noqa: E402


def _run_onnx(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("name", builtin_spaces())
def test_subnet_and_onnx_agree(tmp_path, name):
    sp = load_space(name)
    arch = sample_architecture(sp, seed=11)
    net = build_subnet(sp, arch, seed=0)
    # non-trivial batch-norm statistics so the comparison exercises them
    g = torch.Generator().manual_seed(0)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    path = export_architecture(sp, arch, tmp_path / "net.onnx", model=net)
    onnx.checker.check_model(onnx.load(str(path)))
    assert onnx.load(str(path)).opset_import[0].version >= 17
    rng = np.random.default_rng(0)
    for _ in range(2):
        x = rng.standard_normal((1, sp.input[2], sp.input[0], sp.input[1])).astype(np.float32)
        with torch.no_grad():
            ref = net(torch.from_numpy(x)).numpy()
        assert ref.shape == (1, sp.classes)
        assert np.max(np.abs(ref - _run_onnx(path, x))) < 1e-4
    assert net.macs() == arch.total_macs(sp)
    assert net.params() == arch.total_params(sp)


def test_every_tiny_block_exports(tmp_path):
    sp = load_space("tiny-32")
    for b in sp.unique_blocks():
        p = export_block(b, tmp_path / f"{b.key()}.onnx")
        x = np.ones((1, b.cin, b.h, b.w), np.float32)
        out = _run_onnx(p, x)
        h, w, c = b.out_shape
        assert out.shape == ((1, c) if b.op == "head" else (1, c, h, w))
