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


def write_error(path: str | Path, e: OSError) -> OutputError:
    """One line for an OSError met while writing ``path`` (disk full, read-only, permission): the final
    path, never a temp file's name, and the cause."""
    cause = e.strerror or str(e) or type(e).__name__
    return OutputError(f"cannot write {path}: {cause}; free space or choose another output")


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing ancestors; return the ones created, deepest first."""
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    return created


def _remove_empty(folders: list[Path]) -> None:
    """Undo :func:`_make_parents` after a failed write: a failure leaves no empty folders behind."""
    for p in folders:
        try:
            p.rmdir()
        except OSError:
            break


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` on a temp file beside ``path``, then rename it into place."""
    path = Path(path)
    created: list[Path] = []
    try:
        created = _make_parents(path.parent)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        _remove_empty(created)
        ensure_writable(path)  # names the blocking ancestor when there is one
        raise OutputError(f"cannot write {path}: {e.strerror}; choose a writable output folder") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(tmp_path, path)
    except BaseException as e:
        tmp_path.unlink(missing_ok=True)
        _remove_empty(created)
        if isinstance(e, OSError):
            raise write_error(path, e) from None
        raise
    return path


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks (artifacts and manifolds are identified by it)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def atomic_write_safetensors(path: str | Path, tensors: dict, metadata: dict[str, str]) -> Path:
    """Tensors and string metadata to a safetensors file, atomically; the writer's own I/O error (a full
    disk) is an :class:`OutputError` naming ``path`` like any other write."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    def write(tmp: Path) -> None:
        try:
            save_file(tensors, str(tmp), metadata=metadata)
        except SafetensorError as e:
            raise OSError(str(e).removeprefix("Error while serializing: ")) from None

    return atomic_write(path, write)


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
    created: list[Path] = []
    try:
        created = _make_parents(path.parent)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    except OSError as e:
        _remove_empty(created)
        raise write_error(path, e) from None
    published = False
    try:
        yield tmp
        if not path.exists():
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; outputs get the usual permissions
            os.replace(tmp, path)
        else:
            for item in list(tmp.iterdir()):
                os.replace(item, path / item.name)
        published = True
    except OSError as e:
        if e.filename is None:  # a write to an open file (f.write): the folder is what was being written
            raise write_error(path, e) from None
        if not str(e.filename).startswith(str(tmp)):
            raise  # not a write into the folder (a read elsewhere): its own message
        raise write_error(path / Path(e.filename).relative_to(tmp), e) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not published:
            _remove_empty(created)
