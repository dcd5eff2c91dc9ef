"""``python -m hwnas_profilers``: the same as the ``hwnas-profilers`` command."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
