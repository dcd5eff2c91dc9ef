"""Issue 10: the README's library snippet runs as written (in a folder holding what the
main job would leave in ``runs/default/train``: a small supernet trained here instead)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _snippet() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Library", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the Library section holds one python snippet"
    return blocks[0]


def test_readme_snippet_paths_are_the_main_jobs():
    code = _snippet()
    for path in re.findall(r'"(runs/[^"]+)"', code):
        assert path.startswith("runs/default/train/"), path  # what `hwnas run` writes


@pytest.mark.slow
def test_readme_library_snippet_runs_as_written(tmp_path, monkeypatch, torch_one_thread):
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    from hwnas.spaces import load_space
    from hwnas.train.ponas import TrainConfig, data_for, train_accuracy_table
    from hwnas.train.proxy import Proxy

    # the main job's train/ folder, from a short run at full width (the engine inherits
    # its weights) on a fraction of the data at 8x8 pixels
    space = load_space("tiny-32")
    cfg = TrainConfig(epochs=1, finetune_steps=1, later_paths=1, batch_size=32,
                      proxy=Proxy(channels=1.0, resolution=8, samples=0.15, epochs=1.0))
    train_accuracy_table(space, data_for(space, "digits", cfg),
                         tmp_path / "runs" / "default" / "train", cfg)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "cache"))
    exec(compile(_snippet(), "README.md (Library)", "exec"), {"__name__": "readme"})
    from hwnas.engines.build import read_manifest

    m = read_manifest(tmp_path / "engines" / "ov_int8" / "manifest.json")
    assert m["engine"]["backend"] == "openvino" and m["engine"]["precision"] == "int8"
    assert m["quantization"] and m["latency"]["measured_ms"] > 0
