"""Every public name of the library a deployment script imports has a docstring: the
package's ``__all__`` and the public methods and properties of its classes."""

from __future__ import annotations

import importlib
import inspect

import pytest

MODULES = ["hwnas", "hwnas.solver", "hwnas.tables", "hwnas.engines"]


def _undocumented(module_name: str) -> list[str]:
    mod = importlib.import_module(module_name)
    out = []
    for name in getattr(mod, "__all__", []):
        obj = getattr(mod, name)
        if inspect.ismodule(obj) or not (inspect.isclass(obj) or callable(obj)):
            continue
        if not inspect.getdoc(obj):
            out.append(f"{module_name}.{name}")
        if inspect.isclass(obj):
            for attr, value in vars(obj).items():
                fn = value.fget if isinstance(value, property) else \
                    getattr(value, "__func__", value)
                if attr.startswith("_") or not (callable(fn) or isinstance(value, property)):
                    continue
                if not (getattr(fn, "__doc__", None) or "").strip():
                    out.append(f"{module_name}.{name}.{attr}")
    return out


@pytest.mark.parametrize("module_name", MODULES)
def test_every_public_name_has_a_docstring(module_name):
    pytest.importorskip("numpy")
    assert _undocumented(module_name) == []


def test_an_emitter_untested_on_hardware_says_so():
    from hwnas.engines import available_emitters, emitter_class

    assert "NVIDIA GPU" in emitter_class("tensorrt").untested
    assert all(not emitter_class(n).untested for n in available_emitters() if n != "tensorrt")
