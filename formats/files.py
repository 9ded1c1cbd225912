"""Writing files and folders so that nothing a user has is lost: atomic replacement, staged folders."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile

from georecall.theory.checks import InputError


def write_atomically(path, write) -> None:
    """Call ``write(binary file)`` on a temporary file beside ``path``, then rename it over ``path``:
    a kill at any moment leaves either the old file or the complete new one, never a truncated one.
    The file reaches the disk before the rename (fsync), and the rename before this returns, so a
    crash of the machine keeps that promise too; and the next command does not find the kernel still
    writing the file back (a verify right after a 2^20 build ran 1 s slower for it)."""
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
            raw.flush()
            os.fsync(raw.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes it private; a weights file is not
        os.replace(temporary, path)
        _sync_folder(folder)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def refuse_if_disk_is_short(path, needed: int) -> None:
    """InputError before anything is written when the folder of ``path`` has less room than ``needed``
    bytes (an upper bound: long zero runs become holes); small files are not checked."""
    if needed < 2**30:
        return
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    free = shutil.disk_usage(folder).free if os.path.isdir(folder) else needed
    if needed > free:
        raise InputError(f"cannot write {path}: the file takes up to {needed / 2**30:,.1f} GiB and {folder} has "
                         f"{free / 2**30:,.1f} GiB free")


def _sync_folder(folder: str) -> None:
    """fsync a folder, so that a rename in it is on disk (where the platform allows opening one)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the file itself is on disk
    finally:
        os.close(handle)


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


# ---- output paths: checked before any work, never replaced unless georecall wrote them ----------

MARKER = ".georecall-run"  # a folder holding this file (JSON {"command": ...}) is a run georecall wrote


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a regular file"


def check_new_file(path, force: bool, option: str = "--out") -> None:
    """Refuse, before any work, to write a file where something that must not be replaced stands:
    a symbolic link, a folder, a FIFO, a device or a socket always; a regular file without --force;
    a path whose folder does not exist."""
    path = os.fspath(path)
    if os.path.islink(path):
        raise InputError(f"{option} {path} is a symbolic link; georecall never writes through or over one")
    if os.path.exists(path):
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise InputError(f"{option} {path} is {_kind(mode)}; georecall replaces only regular files it may overwrite")
        if not force:
            raise InputError(f"{option} {path} exists; pass --force to replace it")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError(f"{option} {path}: the folder {folder} does not exist")


def check_run_folder(path, force: bool, command: str, option: str = "--out") -> None:
    """Refuse, before any work, to put a run where it would lose data: a symbolic link or anything
    but a folder always; an existing folder without --force; with --force, a folder that is not a
    previous run of ``command`` (its MARKER) or that holds anything but regular files and folders."""
    path = os.fspath(path)
    if os.path.islink(path):
        raise InputError(f"{option} {path} is a symbolic link; georecall never writes through or over one")
    if not os.path.exists(path):
        return
    mode = os.stat(path).st_mode
    if not stat.S_ISDIR(mode):
        raise InputError(f"{option} {path} is {_kind(mode)}, not a folder of a previous run")
    if not force:
        raise InputError(f"{option} {path} exists; pass --force to replace a previous georecall {command} run there")
    marker = os.path.join(path, MARKER)
    if not (os.path.isfile(marker) and not os.path.islink(marker) and _marker_command(marker) == command):
        raise InputError(f"{option} {path} holds no georecall {command} run (no {MARKER} marker naming it); "
                         "georecall replaces only folders it wrote")
    for folder, subfolders, files in os.walk(path):
        for name in subfolders + files:
            entry = os.path.join(folder, name)
            entry_mode = os.lstat(entry).st_mode
            if not (stat.S_ISREG(entry_mode) or stat.S_ISDIR(entry_mode)):
                raise InputError(f"{option} {path} holds {entry}, which is {'a symbolic link' if stat.S_ISLNK(entry_mode) else _kind(entry_mode)}; "
                                 "georecall replaces only regular files")


def _marker_command(marker: str):
    import json

    try:
        with open(marker) as handle:
            data = json.loads(handle.read(4096))
    except (OSError, ValueError):
        return None
    return data.get("command") if isinstance(data, dict) else None


def write_marker(folder, command: str) -> None:
    import json

    with open(os.path.join(os.fspath(folder), MARKER), "w") as handle:
        json.dump({"command": command, "format": 1}, handle)


@contextlib.contextmanager
def staged_run_folder(target, command: str):
    """Yield a staging folder beside ``target`` (marked as a ``command`` run), then put it at
    ``target`` as a whole; on any exception (SIGINT, SIGTERM included) the staging folder goes."""
    with staged_run_folder_with_live_files(target, command, live_names=()) as (staged, _):
        yield staged


@contextlib.contextmanager
def staged_run_folder_with_live_files(target, command: str, live_names: tuple[str, ...]):
    """Yield (staging folder, live folder). Files named in ``live_names`` are written into the live
    folder as they are produced: ``target`` itself when it does not exist yet (made at once, with the
    run's marker, so the user sees them where they look), else the staging folder (the previous run
    stays whole until the swap). At the end the live files join the staging folder, which replaces
    ``target`` as a whole; on any exception the staging folder goes, and so does a live ``target``
    made here (only the files it wrote: anything else put there keeps the folder)."""
    staged = staging_folder(target)
    live = None
    try:
        write_marker(staged, command)
        if live_names and not os.path.lexists(target):
            os.mkdir(target)
            live = os.fspath(target)
            write_marker(live, command)
        yield staged, live or staged
        if live is not None:
            for name in live_names:
                if os.path.isfile(os.path.join(live, name)):
                    os.replace(os.path.join(live, name), os.path.join(staged, name))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staged, 0o777 & ~umask)  # mkdtemp makes it private; a results folder is not
        replace_folder(staged, target)
    except BaseException:
        if os.path.isdir(staged):
            shutil.rmtree(staged)
        if live is not None:
            _remove_live_folder(live, live_names)
        raise


def _remove_live_folder(live: str, names) -> None:
    for name in (MARKER, *names):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(live, name))
    with contextlib.suppress(OSError):  # not empty: someone put a file there; it stays, and so does the folder
        os.rmdir(live)
