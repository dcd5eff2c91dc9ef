"""A table's median and p90 lines have one fit (:func:`hwnas_profilers.calibration.statistic_lines`):
the lines a profiling run ends with on the device are the lines hwnas refits on the host
from the same networks (recalibration, ``add_statistic_lines``)."""

import math

import pytest

from hwnas_profilers.calibration import statistic_lines


def _networks(scale: float) -> tuple:
    blocks = {f"net{i:03d}": ([0.2 + 0.1 * i, 0.3, 0.05], scale * (0.6 + 0.1 * i)) for i in range(5)}
    return 0.02, blocks


def test_every_line_but_the_tables_own_with_p90_under_its_older_name_too():
    nets = {"floor": _networks(1.0), "median": _networks(1.1), "p90": _networks(1.3)}
    out = statistic_lines("floor", nets)
    assert list(out["lines"]) == ["median", "p90"]
    assert out["lines"]["p90"]["scale"] > out["lines"]["median"]["scale"]
    assert out["upper"] == {k: out["lines"]["p90"][k] for k in out["upper"]}
    assert out["lines"]["median"]["overhead_ms"] == 0.02 and out["lines"]["median"]["fitted_on"] == 5
    assert list(statistic_lines("p90", nets)["lines"]) == ["median"]
    assert "upper" not in statistic_lines("p90", nets)
    assert statistic_lines("median", {"median": nets["median"]}) == {"lines": {}}


def test_the_device_and_the_host_fit_the_same_lines(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("torch")
    from hwnas.bundle import export_bundle
    from hwnas.recalibration import add_statistic_lines
    from hwnas.spaces import load_space
    from hwnas.tables.device import load_device_table
    from hwnas_profilers import Protocol, Settings, profile_bundle

    export_bundle(load_space("tiny-32"), tmp_path / "bundle", calibration_nets=4)
    profile_bundle(tmp_path / "bundle", "onnxruntime", tmp_path / "t.json", Settings(),
                   Protocol.quick())
    table = load_device_table(tmp_path / "t.json")
    device = table.calibration.to_dict()["lines"]
    host = add_statistic_lines(table).calibration.to_dict()["lines"]
    assert set(device) == set(host) == {"median", "p90"}
    for stat in device:
        assert host[stat]["fitted_on"] == device[stat]["fitted_on"] == 4
        for k in ("scale", "offset_ms", "overhead_ms", "loo_median_abs_err_pct"):
            assert math.isclose(host[stat][k], device[stat][k], rel_tol=1e-9, abs_tol=1e-12), \
                (stat, k, host[stat][k], device[stat][k])
