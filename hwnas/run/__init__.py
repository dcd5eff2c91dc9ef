"""The main job (``hwnas run``) as a small package: the run folder and its typed results.

- :mod:`hwnas.run.folder`: :class:`RunFolder`, the one owner of a run folder's file names.
"""

from __future__ import annotations

from .folder import RunFolder

__all__ = ["RunFolder"]
