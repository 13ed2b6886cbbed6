"""Outputs: checked before any work, written whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from metaforge.errors import OutputError
from metaforge.io import atomic_folder, atomic_write_text, ensure_writable


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("rel,folder,words", [
    ("file.txt/out.json", False, ["file.txt is a file, not a folder"]),
    ("file.txt/a/b", True, ["file.txt is a file, not a folder"]),
    ("file.txt", True, ["output folder", "existing file"]),
    ("dir", False, ["output file", "existing folder"]),
])
def test_unwritable_outputs_are_named_and_nothing_is_created(tmp_path: Path, rel: str, folder: bool, words: list[str]) -> None:
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "dir").mkdir()
    before = _tree(tmp_path)
    with pytest.raises(OutputError) as err:
        ensure_writable(tmp_path / rel, folder=folder)
    for w in words:
        assert w in str(err.value)
    assert err.value.exit_code == 2
    assert _tree(tmp_path) == before


def test_a_path_root_cannot_write_is_refused() -> None:
    if not Path("/proc/self").exists():
        pytest.skip("no /proc here")
    with pytest.raises(OutputError, match="/proc is not writable"):
        ensure_writable("/proc/metaforge-test/out", folder=True)


def test_writable_paths_pass_without_creating_anything(tmp_path: Path) -> None:
    ensure_writable(tmp_path / "new" / "deeper" / "x.json")
    ensure_writable(tmp_path / "new-folder", folder=True)
    assert _tree(tmp_path) == []


def test_atomic_write_under_a_file_is_an_output_error(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(OutputError, match="file.txt is a file"):
        atomic_write_text(tmp_path / "file.txt" / "out.json", "{}")


def test_atomic_folder_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    out = tmp_path / "model"
    with pytest.raises(RuntimeError):
        with atomic_folder(out) as tmp:
            (tmp / "a.bin").write_bytes(b"1")
            raise RuntimeError("converter crashed half-way")
    assert _tree(tmp_path) == []
    with atomic_folder(out) as tmp:
        for name in ("a.bin", "b.bin", "c.bin"):
            (tmp / name).write_bytes(b"1")
    assert _tree(tmp_path) == ["model", "model/a.bin", "model/b.bin", "model/c.bin"]
    assert out.stat().st_mode & 0o077, "the folder keeps mkdtemp's private 0700 mode"
    (out / "keep.txt").write_text("mine")
    with atomic_folder(out) as tmp:
        for name in ("a.bin", "b.bin"):
            (tmp / name).write_bytes(b"2")
    assert _tree(tmp_path) == ["model", "model/a.bin", "model/b.bin", "model/c.bin", "model/keep.txt"]
    assert (out / "a.bin").read_bytes() == b"2" and (out / "b.bin").read_bytes() == b"2"
