"""hwnas's door to the one file-format layer, ``hwnas_profilers.fileformat``.

Atomic writes, bounded reads of untrusted JSON (size, depth, finite numbers of sane
size), header checks and filelock locks live there, shared with the device-side package
(which cannot import hwnas); this module turns its ``FormatError`` into hwnas's
``TableError`` (a user error: one line, exit status 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hwnas_profilers import fileformat
from hwnas_profilers.fileformat import (atomic_path, dumps, locked, write_bytes_atomic,
                                  write_json_atomic, write_text_atomic)

from .errors import TableError, UserError

__all__ = ["atomic_path", "check_header", "dumps", "folder_lock", "locked", "read_json",
           "read_text", "read_yaml", "write_bytes_atomic", "write_json_atomic", "write_text_atomic"]

# YAML is read by hwnas only (space files, foreign tables): a node budget for the document
# as its aliases would expand it, checked on the composed node graph before any Python
# object is built. Why by hand: PyYAML's safe loader refuses tags but not alias bombs
# (nine levels of nine aliases is 387 million nodes), and no maintained library bounds it.
YAML_MAX_NODES = 1_000_000


def read_json(path: "str | Path", what: str = "file", limit: int = fileformat.MAX_BYTES) -> Any:
    """Read a JSON file, turning every failure into one clear ``TableError`` line."""
    try:
        return fileformat.read_json(path, what, limit)
    except fileformat.FormatError as exc:
        raise TableError(str(exc)) from None


def read_text(path: "str | Path", what: str = "file", limit: int = fileformat.MAX_BYTES,
              errors: str = "strict") -> str:
    """The text of an untrusted file, its size checked first; failures are one
    ``TableError`` line."""
    try:
        return fileformat.read_text(path, what, limit, errors)
    except fileformat.FormatError as exc:
        raise TableError(str(exc)) from None


def read_yaml(path: "str | Path", what: str = "file", limit: int = fileformat.MAX_BYTES) -> Any:
    """Read a YAML file with PyYAML's safe loader, its expanded size and depth bounded."""
    import yaml

    path = Path(path)
    text = read_text(path, what, limit)
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                _yaml_budget(node, f"{what} {path}")
                obj = loader.construct_document(node)
            else:
                obj = None
        finally:
            loader.dispose()
    except RecursionError:
        raise TableError(f"{what} {path} nests too deep") from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise TableError(f"{what} {path} is not valid YAML: {fileformat.one_line(first, 200)}") from None
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. a timestamp out of range
        raise TableError(f"{what} {path}: {fileformat.one_line(str(exc), 200)}") from None
    if fileformat.depth(obj) > fileformat.MAX_DEPTH:
        raise TableError(f"{what} {path} nests deeper than {fileformat.MAX_DEPTH} levels")
    return obj


def _yaml_budget(root: Any, source: str) -> None:
    """Refuse a node graph whose alias expansion exceeds ``YAML_MAX_NODES`` (memoised
    per node, so a bomb is counted in a few hundred steps, never expanded)."""
    import yaml

    size: dict[int, int] = {}
    order, stack = [], [root]
    while stack:  # post-order without recursion
        n = stack.pop()
        if id(n) in size:
            continue
        size[id(n)] = -1
        order.append(n)
        if isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)
        elif isinstance(n, yaml.MappingNode):
            stack.extend(x for kv in n.value for x in kv)
    for n in reversed(order):
        kids = (n.value if isinstance(n, yaml.SequenceNode) else
                [x for kv in n.value for x in kv] if isinstance(n, yaml.MappingNode) else [])
        total = 1 + sum(max(size.get(id(k), 1), 1) for k in kids)
        if total > YAML_MAX_NODES:
            raise TableError(f"{source} expands to more than {YAML_MAX_NODES:,} nodes through "
                             "its aliases (a YAML bomb?); refused before expanding it")
        size[id(n)] = total


def check_header(d: Any, kind: str, schema: int, source: str, noun: str,
                 error: type[Exception] = TableError) -> None:
    """Refuse a decoded file that is not ``kind`` at schema version ``schema``."""
    try:
        fileformat.check_header(d, kind, source, noun, schema)
    except fileformat.FormatError as exc:
        raise error(str(exc)) from None


def folder_lock(path: "str | Path", what: str):
    """Hold ``path``'s lock for a whole job (``train``, ``run``): a second process writing
    the same folder is refused at once, with one line, instead of mixing the two."""
    try:
        return fileformat.try_lock(path, what)
    except fileformat.LockTimeout as exc:
        raise UserError(str(exc)) from None
