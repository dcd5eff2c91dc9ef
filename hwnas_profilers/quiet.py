"""A runtime's own log output kept off the terminal while it reads or compiles a file.

Runtimes write from C++ straight to file descriptor 2: ExecuTorch's cpuinfo probing and a
refused program's reason, and OpenVINO's frontends, which while probing a file of unknown
format quote its content (a ``token.xml`` linked to a secret was echoed line by line). The
block's output goes to a buffer instead, so a command's error stays hwnas's own bounded
line and nothing of a probed file reaches the terminal.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Iterator


@contextlib.contextmanager
def quiet_stderr() -> Iterator[list[str]]:
    """File descriptor 2 into a buffer for the block. Yields a list that receives the
    captured lines afterwards, so a refusal can quote the runtime's reason on purpose."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines.extend(t for t in tmp.read().decode("utf-8", "replace").splitlines()
                         if t.strip())
