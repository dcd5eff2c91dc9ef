"""Published JSON Schemas (draft 2020-12), one per JSON file format in
``hwnas_profilers.fileformat.KINDS``: ``<name>.schema.json`` for kind ``hwnas.<name>``.

They describe the files for other tools (editors, CI checks, other languages); hwnas's own
readers check the same rules in code, so nothing here imports a validator. The supernet
checkpoint is a torch file, not JSON, and has none.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

NOT_JSON = ("hwnas.supernet_checkpoint",)


def schema_name(kind: str) -> str:
    """The package-data file of ``kind``'s schema (``hwnas.device_table`` ->
    ``device_table.schema.json``)."""
    return kind.split(".", 1)[1] + ".schema.json"


def load_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of the file format ``kind``."""
    return json.loads(resources.files(__name__).joinpath(schema_name(kind)).read_text("utf-8"))
