"""Fast tests of hwnas.train: data, supernet, checkpoints, proxies, shrinking, tables."""

import pickle
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from hwnas.errors import ArchitectureError, UserError  # noqa: E402
from hwnas.spaces import load_space  # noqa: E402
from hwnas.train import (Proxy, Supernet, TrainConfig, data_for, extract_subnet,  # noqa: E402
                         load_checkpoint, load_data, sample_path, save_checkpoint,
                         shrink_keep, train_accuracy_table)
from hwnas.train.checkpoint import Checkpoint  # noqa: E402

TINY = Proxy(channels=0.25, resolution=8, samples=0.15, epochs=1.0)


@pytest.fixture(autouse=True, scope="module")
def _one_thread(torch_one_thread):
    yield


@pytest.fixture(scope="module")
def space():
    return load_space("tiny-32")


# ------------------------------------------------------------------- data
def test_digits_split_is_fixed_by_seed():
    a = load_data("digits", (16, 16, 3), 10, seed=1)
    b = load_data("digits", (16, 16, 3), 10, seed=1)
    c = load_data("digits", (16, 16, 3), 10, seed=2)
    assert a.train_x.shape[1:] == (3, 16, 16) and len(a.train_y) + len(a.val_y) == 1797
    assert torch.equal(a.val_y, b.val_y) and not torch.equal(a.val_y, c.val_y)
    assert abs(float(a.train_x.mean())) < 1e-3
    assert a.preprocessing((16, 16, 3))["labels"] == [str(i) for i in range(10)]


def _pgm(path, arr):
    h, w = arr.shape
    path.write_bytes(f"P5\n{w} {h}\n255\n".encode() + arr.astype(np.uint8).tobytes())


def test_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(4):
            _pgm(tmp_path / cls / f"{i}.pgm", rng.integers(0, 255, (12, 10)))
        np.save(tmp_path / cls / "x.npy", rng.random((9, 9, 3)).astype(np.float32))
    try:
        from PIL import Image

        Image.fromarray(rng.integers(0, 255, (7, 7, 3), dtype=np.uint8)).save(tmp_path / "dog" / "p.png")
        n = 11
    except ImportError:
        n = 10
    d = load_data(tmp_path, (8, 8, 3), 4, seed=0, val_fraction=0.25)
    assert len(d.train_y) + len(d.val_y) == n and d.train_x.shape[1:] == (3, 8, 8)
    assert "2 classes" in d.source
    # the class of each output index, as a deployment must map the engine's logits
    assert d.labels == ("cat", "dog") and d.preprocessing((8, 8, 3))["labels"] == ["cat", "dog"]


def test_image_folder_bad(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(UserError, match="no images"):
        load_data(tmp_path, (8, 8, 1), 10)
    _pgm(tmp_path / "a" / "0.pgm", np.zeros((4, 4)))
    (tmp_path / "b").mkdir()
    with pytest.raises(UserError, match="only one class"):
        load_data(tmp_path, (8, 8, 1), 10)


@pytest.mark.parametrize("shape", [(20, 6, 6), (20, 6, 6, 3), (20, 3, 6, 6)])
def test_npz_shapes(tmp_path, shape):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.random(shape), y=np.arange(20) % 3)
    d = load_data(tmp_path / "d.npz", (8, 8, 3), 3)
    assert d.train_x.shape[1:] == (3, 8, 8) and len(d.val_y) == 4


@pytest.mark.parametrize("x,y,msg", [
    (np.zeros((10, 5)), np.arange(10) % 2, "must be N x H x W"),
    (np.zeros((10, 5, 5, 7)), np.arange(10) % 2, "must be N x H x W"),
    (np.zeros((10, 4, 4)), np.arange(9) % 2, "'y' must be a 1-D"),
    (np.zeros((10, 4, 4)), np.zeros(10, dtype=int), "fewer than two classes"),
    (np.zeros((10, 4, 4)), np.arange(10), "head has 3"),
])
def test_npz_bad(tmp_path, x, y, msg):
    np.savez(tmp_path / "d.npz", x=x, y=y)
    with pytest.raises(UserError, match=msg):
        load_data(tmp_path / "d.npz", (8, 8, 3), 3)


def test_unknown_data():
    with pytest.raises(UserError, match="unknown data"):
        load_data("imagenet", (8, 8, 3), 3)


# ---------------------------------------------------------------- supernet
def test_sample_path(space):
    import random

    a = sample_path(space, random.Random(3))
    assert a == sample_path(space, random.Random(3))
    assert all(c in layer.choices for c, layer in zip(a, space.layers))
    pinned = sample_path(space, random.Random(3), [None, "skip"])
    assert pinned[1] == "skip"


def test_extracted_subnet_matches_supernet(space):
    torch.manual_seed(0)
    net = Supernet(space)
    # give BN statistics non-trivial values so inheritance of buffers is checked too
    net.train()
    with torch.no_grad():
        for seed in range(3):
            net(torch.randn(4, 3, 32, 32), space.sample(seed))
    net.eval()
    x = torch.randn(2, 3, 32, 32)
    for seed in range(4):
        path = space.sample(seed)
        sub = extract_subnet(net, path).eval()
        with torch.no_grad():
            assert torch.allclose(sub(x), net(x, path), atol=1e-6)
    with pytest.raises(ArchitectureError):
        extract_subnet(net, ("k3e3",) * 5)
    with pytest.raises(ArchitectureError):
        extract_subnet(net, ("skip",) * 6)  # skip is not offered on layer 0


# -------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip_and_refusals(space, tmp_path):
    small = TINY.apply(space)
    net = Supernet(small)
    ck = Checkpoint(small, space, {"seed": 1}, {"meta_epoch": 2}, net.state_dict())
    path = save_checkpoint(tmp_path / "s.pt", ck)
    back = load_checkpoint(path, space)
    assert back.space.id == small.id and back.progress["meta_epoch"] == 2
    restored = back.supernet()
    for k, v in net.state_dict().items():
        assert torch.equal(v, restored.state_dict()[k])
    with pytest.raises(UserError, match="is for space tiny-32"):
        load_checkpoint(path, load_space("proxyless-mobile"))
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="refused"):
        load_checkpoint(tmp_path / "bad.pt")
    # a pickle with an arbitrary object is refused by weights_only loading
    with open(tmp_path / "evil.pt", "wb") as fh:
        pickle.dump({"kind": "hwnas.supernet_checkpoint", "x": object()}, fh)
    with pytest.raises(UserError):
        load_checkpoint(tmp_path / "evil.pt")


# ------------------------------------------------------------------ proxies
def test_proxy_parse_and_apply(space):
    assert Proxy.parse("full").is_full and Proxy.parse(None).is_full
    p = Proxy.parse("channels=0.5,resolution=16,samples=0.5,epochs=0.5")
    assert p == Proxy.parse("c0.5,r16,s0.5,e0.5") and p.tag() == "c0.5,r16,s0.5,e0.5"
    small = p.apply(space)
    assert small.input == (16, 16, 3) and small.stem.cout == 8
    assert [l.choices for l in small.layers] == [l.choices for l in space.layers]
    assert Proxy().apply(space) is space
    for bad in ("channels=2", "x0.5", "resolution=abc", "c0.5,c0.5", "epochs=0"):
        with pytest.raises(UserError):
            Proxy.parse(bad)


# ------------------------------------------------ training, table, shrinking
@pytest.fixture(scope="module")
def trained(space, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(epochs=1, batch_size=32, finetune_steps=1, later_paths=1, bn_batches=1,
                      shrink_rounds=1, shrink_epochs=0, angle_paths=2, proxy=TINY)
    data = data_for(space, "digits", cfg)
    return out, cfg, data, train_accuracy_table(space, data, out, cfg)


def test_table_written_and_reloadable(trained):
    from hwnas.tables import load_accuracy_table

    out, cfg, _, res = trained
    tab = load_accuracy_table(out / "accuracy_table.json")
    assert tab.space.id == res.table.space.id
    assert tab.provenance["proxy_tag"] == TINY.tag() and tab.provenance["seed"] == 0
    assert tab.provenance["data"] == "digits" and tab.provenance["epochs"] == 1
    for row in tab.to_dict()["relative_loss"]:
        assert min(row.values()) == 0.0
    for i, row in enumerate(tab.scores):
        assert all(0.0 <= v <= 1.0 for _, v in row)
        assert res.chosen[i] == max(row, key=lambda cv: cv[1])[0]
    assert (out / "supernet.pt").is_file()


def test_shrinking_writes_loadable_space(space, trained):
    out, _, _, res = trained
    shrunk = load_space(out / "space.json")
    assert shrunk.id == res.table.space.id
    for before, after in zip(space.layers, shrunk.layers):
        assert len(after.choices) == len(before.choices) - 1 >= 1
    keep = shrink_keep(shrunk, [{c: 1.0 for c in l.choices} for l in shrunk.layers], drop=10)
    assert all(len(k) == 1 for k in keep)


def test_rerun_resumes_and_refuses_other_settings(space, trained):
    out, cfg, data, res = trained
    before = (out / "supernet.pt").read_bytes()
    again = train_accuracy_table(space, data, out, cfg)
    assert again.table.scores == res.table.scores
    other = TrainConfig(epochs=2, proxy=TINY)
    with pytest.raises(UserError, match="other settings"):
        train_accuracy_table(space, data, out, other)
    with pytest.raises(UserError, match="checkpoint for space"):
        train_accuracy_table(load_space("proxyless-mobile"), data, out, cfg)
    assert (out / "supernet.pt").read_bytes() == before


def _train_tiny_benchmark():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "train_tiny.py"
    spec = importlib.util.spec_from_file_location("train_tiny_benchmark", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_validate_and_rank_consistency(trained):
    pytest.importorskip("scipy")
    from hwnas.solver.brute_force import exhaustive_best as best_within
    from hwnas.train.validate import EvalSettings, rank_consistency, validate_table

    bench = _train_tiny_benchmark()  # the table-against-random check is the benchmark's
    best_vs_random, macs_latency = bench.best_vs_random, bench.macs_latency

    out, cfg, data, res = trained
    net = load_checkpoint(out / "supernet.pt").supernet()
    d = validate_table(net, res.table, data, samples=3,
                       settings=EvalSettings(bn_batches=1, finetune_steps=1))
    assert d["samples"] == 3 and -1.0 <= d["inherited"]["kendall_tau"] <= 1.0
    assert "finetuned" in d
    rc = rank_consistency(res.table, res.table)
    assert rc["pooled"]["kendall_tau"] == pytest.approx(1.0)
    lat = macs_latency(res.table)
    best = best_within(res.table, lat, None)
    cheap = best_within(res.table, lat, lat(best) * 0.6)
    assert cheap is not None and lat(cheap) <= lat(best) * 0.6
    assert best_within(res.table, lat, 1.0) is None
    cmp = best_vs_random(net, res.table, data, lat, randoms=2, settings=EvalSettings(bn_batches=1))
    assert cmp["randoms"] == 2 and 0.0 <= cmp["inherited"]["best"] <= 1.0


def test_sampled_prefix_variant(space, tmp_path):
    with pytest.raises(UserError, match="prefix"):
        TrainConfig(prefix="best")
    cfg = TrainConfig(epochs=1, batch_size=32, finetune_steps=1, later_paths=2, bn_batches=1,
                      prefix="sampled", proxy=TINY)
    res = train_accuracy_table(space, data_for(space, "digits", cfg), tmp_path, cfg)
    assert res.table.provenance["prefix"] == "sampled"
    assert len(res.chosen) == len(space.layers)


def test_held_out_test_split_is_disjoint_and_keeps_validation():
    """The test split comes after the validation split in one seeded permutation: the
    validation images stay those of a run without a test split; train, val and test are
    disjoint and together the whole set."""
    import torch

    from hwnas.errors import UserError

    plain = load_data("digits", (8, 8, 1), 10, seed=3, val_fraction=0.3)
    d = load_data("digits", (8, 8, 1), 10, seed=3, val_fraction=0.3, test_fraction=0.15)
    assert not plain.has_test and d.has_test
    assert len(d.val_y) == len(plain.val_y) == round(1797 * 0.3)
    assert len(d.test_y) == round(1797 * 0.15)
    assert len(d.train_y) + len(d.val_y) + len(d.test_y) == 1797
    # the validation images are the same ones (normalisation differs: fewer train images)
    assert torch.equal(d.val_y, plain.val_y)
    rows = lambda x: {tuple(r.flatten().tolist()) for r in x * d.std + d.mean}  # noqa: E731
    va, te = rows(d.val_x), rows(d.test_x)
    assert not (te & va) or len(te & va) < 5  # digits holds a few duplicate images
    assert d.describe()["test"] == len(d.test_y)
    for bad in (-0.1, 0.7, 1.0):
        with pytest.raises(UserError):
            load_data("digits", (8, 8, 1), 10, seed=3, val_fraction=0.3, test_fraction=bad)


@pytest.mark.heavy
def test_shared_prefix_stage2_equals_whole_path_evaluation(space, tmp_path, monkeypatch):
    """Stage 2 without fine-tuning runs each context's prefix once for all candidates of a
    layer (PrefixFeatures); the table it writes is the one whole-path evaluation gives."""
    from hwnas.train import evaluate_path, ponas

    cfg = TrainConfig(epochs=1, batch_size=16, finetune_steps=0, later_paths=2, bn_batches=2,
                      prefix="sampled", proxy=TINY)
    data = data_for(space, "digits", cfg)
    made = []
    init = ponas.PrefixFeatures.__init__
    monkeypatch.setattr(ponas.PrefixFeatures, "__init__",
                        lambda self, *a, **k: made.append(a[2]) or init(self, *a, **k))
    shared = train_accuracy_table(space, data, tmp_path / "shared", cfg)
    assert made == [l for l in range(len(space.layers)) for _ in range(2)]  # it ran cached
    monkeypatch.setattr(ponas, "PREFIX_CACHE_BYTES", 0)  # every path evaluated whole
    whole = train_accuracy_table(space, data, tmp_path / "whole", cfg)
    assert shared.table.scores == whole.table.scores
    assert shared.chosen == whole.chosen
    # one path, every layer: the cached prefix gives evaluate_path's accuracy
    import random

    torch.manual_seed(0)
    net = Supernet(cfg.proxy.apply(space))
    p = sample_path(net.space, random.Random(1))
    for l in range(len(net.space.layers)):
        feats = ponas.PrefixFeatures(net, p, l, data, cfg, 7)
        assert feats.accuracy(net, p, data) == evaluate_path(net, p, data, cfg, 7)


def test_unshared_supernet_starts_equal_and_separates_paths(space):
    """PWSNAS's less weight sharing: each block gets one copy per previous-layer choice; the
    copies start from the shared weights (every path computes what it did), and a path
    uses the copy its previous choice selects."""
    import random

    from hwnas.train.supernet import unshare_supernet

    torch.manual_seed(0)
    small = space.shrink([list(l.choices[:2]) for l in space.layers], name="two")
    net = Supernet(small).eval()
    un = unshare_supernet(net).eval()
    assert un.unshared and not net.unshared
    n_shared = sum(p.numel() for p in net.layers.parameters())
    n_un = sum(p.numel() for p in un.layers.parameters())
    assert n_shared < n_un < 2 * n_shared + 1  # two copies of layers 1.., one of layer 0
    x = torch.randn(3, 3, 32, 32)
    rng = random.Random(0)
    for _ in range(4):
        p = sample_path(small, rng)
        assert torch.allclose(net(x, p), un(x, p), atol=1e-6)
        assert torch.allclose(extract_subnet(un, p).eval()(x), un(x, p), atol=1e-6)
    # one copy moves: only the paths through it change
    a, b = small.layers[0].choices
    c = small.layers[1].choices[0]
    with torch.no_grad():
        for q in un.layers[1][f"{a}>{c}"].parameters():
            q.add_(0.5)
    rest = tuple(small.layers[i].choices[0] for i in range(2, len(small.layers)))
    pa, pb = (a, c) + rest, (b, c) + rest
    assert not torch.allclose(un(x, pa), net(x, pa))
    assert torch.allclose(un(x, pb), net(x, pb), atol=1e-6)
    assert un.key(1, pa) == f"{a}>{c}" and net.key(1, pa) == c


def test_unshare_trains_resumes_and_reloads(space, tmp_path):
    from dataclasses import replace

    cfg = TrainConfig(epochs=1, batch_size=32, finetune_steps=0, later_paths=1, bn_batches=1,
                      shrink_rounds=2, shrink_epochs=0, angle_paths=2, unshare_epochs=1,
                      prefix="sampled", proxy=TINY)
    data = data_for(space, "digits", cfg)
    res = train_accuracy_table(space, data, tmp_path, cfg)
    ck = load_checkpoint(res.checkpoint_path)
    assert ck.progress["unshared"] is True and ck.progress["unshare_epoch"] == 1
    net = ck.supernet()
    assert net.unshared and any(">" in k for k in net.state_dict())
    assert res.table.provenance["unshare_epochs"] == 1 and "unshare" in res.table.provenance["seconds"]
    again = train_accuracy_table(space, data, tmp_path, cfg)  # resumes: nothing to do
    assert again.table.scores == res.table.scores
    with pytest.raises(UserError, match="other settings"):
        train_accuracy_table(space, data, tmp_path, replace(cfg, unshare_epochs=2))
    with pytest.raises(UserError, match="unshare-epochs"):
        TrainConfig(unshare_epochs=-1)


def test_digits_hard_is_fixed_and_built_in():
    """The harder built-in task: three transformed, overlaid, noisy copies of every digit,
    the same images on every call (seeded), usable wherever 'digits' is."""
    a = load_data("digits-hard", (16, 16, 1), 10, seed=0, val_fraction=0.3, test_fraction=0.15)
    b = load_data("digits-hard", (16, 16, 1), 10, seed=0, val_fraction=0.3, test_fraction=0.15)
    n = len(a.train_y) + len(a.val_y) + len(a.test_y)
    assert n == 3 * 1797 and a.source == "digits-hard"
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    assert sorted(set(a.train_y.tolist())) == list(range(10))
    plain = load_data("digits", (16, 16, 1), 10, seed=0)
    assert not torch.allclose(a.train_x[:5], plain.train_x[:5])
    with pytest.raises(UserError, match="digits-hard"):
        load_data("digits-easy", (16, 16, 1), 10)
