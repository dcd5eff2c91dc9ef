"""One check that a file a manifest names stays in its folder, for the block bundles the
device reads and for the run folders hwnas reads back (hwnas.runfiles)."""

import pytest

from hwnas.errors import UserError
from hwnas.runfiles import inside as in_run_folder
from hwnas_profilers import ProfilerError
from hwnas_profilers.bundlecheck import inside


@pytest.fixture
def folder(tmp_path):
    home = tmp_path / "home"
    (home / "blocks").mkdir(parents=True)
    (home / "blocks" / "b.onnx").write_bytes(b"block")
    (home / "model.onnx").write_bytes(b"engine")
    (tmp_path / "secret.txt").write_text("secret")
    (home / "link.onnx").symlink_to(tmp_path / "secret.txt")
    (home / "blocks" / "up.onnx").symlink_to(home / "model.onnx")
    return home


ESCAPES = ["../secret.txt", "/etc/passwd", "link.onnx", "blocks/../../secret.txt", "a\\b",
           "a\0b", "", ".", "..", None, 5, ["model.onnx"]]


@pytest.mark.parametrize("rel", ESCAPES)
def test_both_sides_refuse_a_path_out_of_the_folder_in_one_line(folder, rel):
    with pytest.raises(ProfilerError) as bundle:
        inside(folder, rel, "manifest.json: blocks[0]")
    with pytest.raises(UserError) as run:
        in_run_folder(folder, rel, "engine manifest")
    for exc, where in ((bundle.value, "manifest.json: blocks[0]: "), (run.value, "engine manifest: ")):
        assert str(exc).startswith(where) and "\n" not in str(exc)


def test_a_bundle_takes_its_subfolders_a_run_folder_file_names_only(folder):
    assert inside(folder, "blocks/b.onnx", "blocks[0]") == folder / "blocks" / "b.onnx"
    assert in_run_folder(folder, "model.onnx", "engine manifest") == folder / "model.onnx"
    with pytest.raises(UserError, match="not a file name"):
        in_run_folder(folder, "blocks/b.onnx", "engine manifest")
    # a link that stays inside is followed: the bundle's own file
    assert inside(folder, "blocks/up.onnx", "blocks[0]") == folder / "blocks" / "up.onnx"
    with pytest.raises(ProfilerError, match="links out of"):
        inside(folder, "link.onnx", "blocks[0]")
