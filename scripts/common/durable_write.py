"""The durable write every file the bundle produces goes through: a temporary file flushed, renamed into place, and
the folder flushed, so a power cut or a full disk leaves the former file or the new one, never a torn one."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch


def fsync_directory(path: Path) -> None:
    """Make a rename inside ``path`` durable (POSIX needs the directory entry flushed too)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def current_umask() -> int:
    """The process's umask, read anew on every call (a program may change it between two writes).

    POSIX can only read the umask by setting it; where Linux shows it in ``/proc/self/status`` (4.7+) it is read from
    there, so no other thread ever creates a file under a borrowed mask. Elsewhere it is set and put back at once."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)  # while borrowed, a file another thread creates is private rather than world-writable
    os.umask(mask)
    return mask


def ordinary_file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: ``0o666`` less the umask (``0o644`` under umask 022, ``0o664``
    under 002). ``tempfile.mkstemp`` creates ``0o600`` whatever the umask, which would keep every output from the
    user's group."""
    return 0o666 & ~current_umask()


class WriteError(OSError):
    """A file that could not be written (a full disk, a quota, a folder gone read-only), as one line that names the
    file, its folder and the reason: ``cannot write last.pth in /runs/.../checkpoints: No space left on device``.
    ``errno`` and ``filename`` are the failed write's."""

    def __str__(self) -> str:
        if not self.filename:
            return super().__str__()
        path = Path(self.filename)
        return f"cannot write {path.name} in {path.parent}: {self.strerror}"


def os_error_in(error: BaseException) -> OSError | None:
    """``error`` if it is an ``OSError``, else the ``OSError`` a ``RuntimeError`` wraps: torch's zip writer reports a
    full disk as ``RuntimeError: [enforce fail at inline_container.cc] unexpected pos`` raised while handling the
    ``OSError`` of the Python file's write, and MONAI's transforms re-raise a saver's ``OSError`` as ``RuntimeError:
    applying transform``. ``None`` for any other error (a bug keeps its traceback)."""
    seen = set()
    while isinstance(error, BaseException) and id(error) not in seen:
        if isinstance(error, OSError):
            return error
        if not isinstance(error, RuntimeError):
            return None
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def replace_durably(write: Callable[[Path], None], path: Path, suffix: str = ".part") -> None:
    """``write(temporary path)`` beside ``path``, fsync that file, rename it to ``path``, fsync the folder: readers
    never see a partial file under the final name, and a power cut cannot leave an empty one. If ``write`` raises
    (a check that fails included), nothing is renamed and the temporary file is removed. ``suffix`` ends the
    temporary name (writers that choose their format by extension need it). The file gets the mode an ordinary
    write would (:func:`ordinary_file_mode`), set before the rename, so the final name never shows the temporary
    file's ``0o600``. A write the system refuses (``ENOSPC`` and every other ``OSError``, also when a writer wraps it
    in a ``RuntimeError``) is a :class:`WriteError` naming ``path``; a former file under ``path`` stays as it was."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=path.parent)
        os.close(fd)
        try:
            write(Path(tmp_name))
            with open(tmp_name, "rb+") as written:
                os.fchmod(written.fileno(), ordinary_file_mode())
                os.fsync(written.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        fsync_directory(path.parent)
    except (OSError, RuntimeError) as error:
        refused = os_error_in(error)
        if refused is None or isinstance(refused, WriteError):
            raise
        raise WriteError(refused.errno, refused.strerror or str(refused), str(path)) from error


def save_durably(obj, path: Path, save: Callable = torch.save, **kwargs) -> None:
    """``save(obj, file)`` through :func:`replace_durably`, into a ``.tmp-*.part`` file beside ``path``."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            save(obj, f, **kwargs)

    replace_durably(write, path)


def write_text_durably(text: str, path: Path) -> None:
    """:func:`save_durably` for a text file (reports, tables, settings): the old file or the new one, never half."""
    save_durably(text, path, save=lambda obj, f: f.write(obj.encode()))


def csv_text(rows: list[dict], fieldnames: list[str]) -> str:
    """``rows`` as CSV text, header first."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=fieldnames)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
