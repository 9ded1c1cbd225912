"""Writing files and folders so that nothing a user has is lost: atomic replacement, staged folders."""

from __future__ import annotations

import os
import tempfile

from georecall.theory.checks import InputError


def write_atomically(path, write) -> None:
    """Call ``write(binary file)`` on a temporary file beside ``path``, then rename it over ``path``:
    a kill at any moment leaves either the old file or the complete new one, never a truncated one."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError(f"cannot write {path}: the folder {folder} does not exist")
    if os.path.isdir(path):
        raise InputError(f"cannot write {path}: it is a folder")
    handle, temporary = tempfile.mkstemp(prefix=".georecall-", suffix=".part", dir=folder)
    try:
        with os.fdopen(handle, "wb") as raw:
            write(raw)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes it private; a weights file is not
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def staging_folder(target) -> str:
    """An empty folder beside ``target`` to write a whole run into before ``replace_folder``."""
    target = os.path.abspath(os.fspath(target))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    return tempfile.mkdtemp(prefix=f".{os.path.basename(target)}-", suffix=".part", dir=os.path.dirname(target))


def replace_folder(staged, target) -> None:
    """Put the folder ``staged`` at ``target`` as a whole: a kill at any moment leaves the old folder
    or the new one. An existing target is swapped in one step (Linux renameat2 RENAME_EXCHANGE),
    then deleted; where that call is missing, two renames leave a moment with neither in place
    (the old one then survives beside it as ``staged``)."""
    import shutil

    staged, target = os.fspath(staged), os.fspath(target)
    if not os.path.exists(target):
        os.rename(staged, target)
        return
    if not os.path.isdir(target):
        raise InputError(f"--out {target} exists and is not a folder")
    if not _exchange(staged, target):
        old = staged + ".old"
        os.rename(target, old)
        os.rename(staged, target)
        staged = old
    shutil.rmtree(staged)


def _exchange(a: str, b: str) -> bool:
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    AT_FDCWD, RENAME_EXCHANGE = -100, 2
    return renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0
