"""``python -m hwnas_profilers``: the same as the ``hwnas-profilers`` command."""

from .cli import main

raise SystemExit(main())
