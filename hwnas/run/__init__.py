"""The main job (``hwnas run``) as a small package.

- :mod:`hwnas.run.folder`: :class:`RunFolder`, the one owner of a run folder's file names;
- :mod:`hwnas.run.results`: :class:`RunResult` and :class:`RunSummary`, the summary's rows
  and file as typed values;
- :mod:`hwnas.run.baselines`: the baseline networks measured beside the chosen ones.

The steps themselves are :mod:`hwnas.pipeline` and the drawing :mod:`hwnas.report`.
"""

from __future__ import annotations

from .folder import RunFolder
from .results import RunResult, RunSummary

__all__ = ["RunFolder", "RunResult", "RunSummary"]
