"""Files that hold secrets (account lists, device configs with passwords, the kiosk's PIN hash).

One way to write them: a temporary file beside the target, created with the final mode (never readable by others,
whatever the umask), synced, then renamed over the target. A reader sees the old text or the new, never half a
file, and a crash or a full disk mid-write leaves the old file as it was.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

PRIVATE = 0o600


def write_private(path: str | os.PathLike, text: str, mode: int = PRIVATE) -> None:
    """Replace `path` with `text` (UTF-8) atomically; the file has `mode` (0600 unless told) from its first byte."""
    target = Path(path)
    # A unique name: two writers at once must not share one temporary file (mkstemp creates it 0600).
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), mode)
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _sync_dir(target.parent)


def _sync_dir(directory: Path) -> None:
    """The rename itself survives a power cut only once the directory is synced."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory; the rename is still atomic
    finally:
        os.close(fd)
