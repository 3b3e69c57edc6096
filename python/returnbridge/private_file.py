"""Files only the owner may read (dev token, NATS credentials): created with mode 0600 before any byte is written."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["write_private_file"]


def write_private_file(path: Path, text: str) -> None:
    """Atomically replace ``path`` with ``text``, readable by the owner only.

    The bytes go into a temp file that ``mkstemp`` opens with mode 0600 (``O_CREAT | O_EXCL``) in the same
    directory, which is then renamed over ``path``: no reader ever sees a partial file or a wider mode.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
