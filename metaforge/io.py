"""Atomic file writes: a reader never sees a half-written output, even after a crash.

``ensure_writable`` checks an output path before any work is done, so a run never computes for
minutes and then fails to save (or leaves half of a folder behind).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from metaforge.errors import OutputError


def ensure_writable(path: str | Path, *, folder: bool = False) -> Path:
    """Raise :class:`OutputError` unless ``path`` (a file, or a folder if ``folder``) can be written.

    Nothing is created: the nearest existing ancestor must be a folder in which a file can really
    be made (probed with a temp file that is removed at once; permission bits alone do not stop
    root, a read-only mount or /proc do).
    """
    path = Path(path).expanduser()
    kind = "folder" if folder else "file"
    if path.exists():
        if folder and not path.is_dir():
            raise OutputError(f"cannot write the output folder {path}: it is an existing file; give a folder path")
        if not folder and path.is_dir():
            raise OutputError(f"cannot write the output file {path}: it is an existing folder; give a file path")
    start = path if folder and path.is_dir() else path.parent
    for ancestor in (start, *start.parents):
        if not ancestor.exists():
            continue
        if not ancestor.is_dir():
            raise OutputError(f"cannot write {path}: {ancestor} is a file, not a folder; choose another output {kind}")
        try:
            fd, probe = tempfile.mkstemp(prefix=".metaforge-probe.", dir=ancestor)
        except OSError as e:
            raise OutputError(f"cannot write {path}: {ancestor} is not writable ({e.strerror}); choose another output {kind}") from None
        os.close(fd)
        os.unlink(probe)
        break
    return path


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` on a temp file beside ``path``, then rename it into place."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        ensure_writable(path)  # names the blocking ancestor when there is one
        raise OutputError(f"cannot write {path}: {e.strerror}; choose a writable output folder") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text))


@contextlib.contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Fill a temp folder beside ``path``; on success its files replace ``path``'s, on failure it is removed.

    A fresh ``path`` appears whole or not at all; files of an existing ``path`` that the new
    content does not have are kept.
    """
    path = Path(path)
    ensure_writable(path, folder=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if not path.exists():
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; outputs get the usual permissions
            os.replace(tmp, path)
            return
        for item in list(tmp.iterdir()):
            os.replace(item, path / item.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
