"""Safe file I/O, one home for it: atomic writes, an output lock, and bounded reads of ``.npz`` files.

Everything dahyf writes (takes, checkpoints, previews, presets, prediction files ...) goes through
:func:`atomic_path` / :func:`atomic_write`: the data is written to a temporary file beside the
target (``.NAME.XXXX.partial.EXT``), flushed to disk, given ordinary permissions and renamed into
place, so a reader sees the old file or the new one, never half of one; on any error, and on
SIGTERM while the main thread is writing, the temporary file is removed. :func:`output_lock`
keeps two processes from writing one output at the same time; :func:`check_output` finds an
unwritable or already-taken output before minutes of work. :func:`read_npz` reads a ``.npz`` of
plain arrays after checking every member's declared size against a bound, before decompressing
anything (a small file cannot make it allocate gigabytes).
"""
from __future__ import annotations

import math
import os
import signal
import tempfile
import threading
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import DaHyFUserError


class OutputExistsError(DaHyFUserError, FileExistsError):
    """The output file exists and overwriting was not asked for."""


class OutputBusyError(DaHyFUserError, OSError):
    """Another process (or thread) is writing the same output right now."""


class UnsafeFileError(DaHyFUserError, ValueError):
    """A file declares more data than allowed, or data of a kind that is refused; read nothing of it."""


class DamagedFileError(DaHyFUserError, ValueError):
    """A file is cut short, corrupt or not of the expected kind at all."""


class _OutputError(DaHyFUserError, OSError):
    """An output file cannot be written (folder missing, not writable, a folder in the way)."""


# --- permissions --------------------------------------------------------------------------------
def _umask() -> int:
    """The process umask: from /proc (Linux, no side effect), else set and restored at once."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def user_file_mode() -> int:
    """Permission bits of an ordinary new file (0o666 minus the umask); mkstemp gives 0o600."""
    return 0o666 & ~_umask()


# --- removal of temporary files on SIGTERM --------------------------------------------------------
_live_paths: dict[str, int] = {}
_live_lock = threading.Lock()
_handler_installed = False


def _on_sigterm(signum, frame):  # pragma: no cover - runs in a process that is being terminated
    """Remove the temporary files being written, then die of SIGTERM as if no handler were set."""
    for p in list(_live_paths):
        try:
            os.unlink(p)
        except OSError:
            pass
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _install_sigterm_cleanup() -> None:
    """Install :func:`_on_sigterm` when possible: main thread, and no other handler set (Blender's is kept)."""
    global _handler_installed
    if _handler_installed or threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
            _handler_installed = True
    except (ValueError, OSError, AttributeError):  # no signals here (embedded interpreter, Windows quirks)
        pass


def _uninstall_sigterm_cleanup() -> None:
    global _handler_installed
    if _handler_installed and not _live_paths and threading.current_thread() is threading.main_thread():
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _handler_installed = False


@contextmanager
def removed_on_sigterm(*paths) -> Iterator[None]:
    """Remove ``paths`` if the process gets SIGTERM inside this block (only when the main thread runs it).

    While no such block is open, SIGTERM behaves exactly as without dahyf.
    """
    keys = [os.fspath(p) for p in paths]
    with _live_lock:
        for k in keys:
            _live_paths[k] = _live_paths.get(k, 0) + 1
        _install_sigterm_cleanup()
    try:
        yield
    finally:
        with _live_lock:
            for k in keys:
                n = _live_paths.pop(k, 1) - 1
                if n > 0:
                    _live_paths[k] = n
            _uninstall_sigterm_cleanup()


# --- atomic writes ------------------------------------------------------------------------------
def _fsync_path(path, directory: bool = False) -> None:
    """Flush a file (or a folder's entries) to disk; best effort where the platform cannot."""
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error, rename it onto ``path``.

    For writers that want a file name (``torch.save``, ``cv2.VideoWriter``, ``zipfile``); the
    temporary name keeps ``path``'s extension (``.NAME.XXXX.partial.EXT``). The file gets ordinary
    permissions (0o666 minus the umask) and is flushed to disk before the rename. On an error, or
    SIGTERM, the temporary file is removed and ``path`` is left as it was.

    Raises
    ------
    OutputExistsError
        ``overwrite`` is False and ``path`` exists.
    OSError
        The folder is missing or not writable, the disk is full, ...
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not overwrite and path.exists():
        raise OutputExistsError(f"{path} already exists; it was not overwritten.")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".partial{path.suffix}", dir=folder)
    os.close(fd)
    with removed_on_sigterm(tmp):
        try:
            yield Path(tmp)
            os.chmod(tmp, user_file_mode())
            _fsync_path(tmp)
            if not overwrite and path.exists():
                raise OutputExistsError(f"{path} appeared while it was being written; it was not overwritten.")
            os.replace(tmp, path)
            _fsync_path(folder, directory=True)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@contextmanager
def atomic_write(path, mode: str = "wb", encoding: str | None = None, overwrite: bool = True):
    """Open a temporary file for writing and rename it onto ``path`` when the block succeeds (see :func:`atomic_path`).

    ``mode`` is ``'wb'`` or ``'w'`` (text, UTF-8 unless ``encoding`` says otherwise).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', got {mode!r}")
    with atomic_path(path, overwrite=overwrite) as tmp:
        kwargs = {} if mode == "wb" else {"encoding": encoding or "utf-8", "newline": ""}
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_bytes(path, data: bytes, overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_write(path, "wb", overwrite=overwrite) as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path, text: str, encoding: str = "utf-8", overwrite: bool = True) -> Path:
    """Write ``text`` to ``path`` atomically; returns ``path``."""
    with atomic_write(path, "w", encoding=encoding, overwrite=overwrite) as fh:
        fh.write(text)
    return Path(path)


# --- output lock and checks ---------------------------------------------------------------------
_held_locks: dict[str, list] = {}   # lock path -> [owner thread id, depth]
_held_guard = threading.Lock()


def lock_path(path) -> Path:
    """The lock file of an output: ``.NAME.lock`` beside it."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except (BlockingIOError, PermissionError):
        return False


@contextmanager
def output_lock(path) -> Iterator[Path]:
    """Hold an exclusive lock on writing ``path`` for the block (a ``.NAME.lock`` file beside it).

    Re-entrant in the thread that holds it; another process or thread asking for the same lock
    gets :class:`OutputBusyError` at once (no waiting). The lock is released by the system if the
    process dies; the lock file is removed when the block ends (and on SIGTERM).
    """
    lp = lock_path(path)
    key = os.path.abspath(lp)
    me = threading.get_ident()
    with _held_guard:
        held = _held_locks.get(key)
        if held is not None:
            if held[0] != me:
                raise OutputBusyError(f"{path} is being written by another capture in this program; "
                                      "wait for it to finish or choose another output file.")
            held[1] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield lp
        finally:
            with _held_guard:
                _held_locks[key][1] -= 1
        return
    busy = OutputBusyError(f"{path} is being written by another dahyf process (lock file {lp}); wait for it "
                           "to finish or choose another output file. If no dahyf is running, delete the lock file.")
    while True:
        fd = os.open(lp, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            os.close(fd)
            raise busy
        try:  # the holder before us may have removed the file between our open and our lock
            same = os.path.samestat(os.fstat(fd), os.stat(lp))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    with _held_guard:
        if key in _held_locks:  # another thread of this process won the race
            os.close(fd)
            raise busy
        _held_locks[key] = [me, 1]
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        with removed_on_sigterm(lp):
            yield lp
    finally:
        with _held_guard:
            del _held_locks[key]
        try:
            os.unlink(lp)      # while still locked: a waiting opener re-checks the inode
        except OSError:
            pass
        os.close(fd)


def check_output(path, overwrite: bool = False, what: str = "output") -> Path:
    """Check, before any work, that ``path`` can be written: folder exists and is writable, not a folder, not taken.

    Returns ``path`` as a Path. Raises :class:`OutputExistsError` when it exists and ``overwrite``
    is False, and a :class:`DaHyFUserError` (with what to do) for the other cases.
    """
    path = Path(path).expanduser()
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise _OutputError(f"Cannot write the {what} {path}: folder {folder} does not exist. Create it first.")
    if path.is_dir():
        raise _OutputError(f"Cannot write the {what} {path}: it is a folder. Give a file name.")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"The {what} {path} already exists. Choose another name, or allow overwriting "
                                "(--force on the command line).")
    try:  # os.access is unreliable on network and ACL file systems: try it
        fd, probe = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".probe", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise _OutputError(f"Cannot write the {what} {path}: {exc.strerror or exc}. Check the folder's "
                           "permissions and free disk space, or choose another folder.") from None
    return path



# --- bounded .npz reads ------------------------------------------------------------------------------
#: dtype kinds a plain-array .npz may hold: bool, ints, floats, complex, fixed-width strings.
_NPZ_KINDS = frozenset("biufcSU")
_MAX_NPZ_MEMBERS = 256


def _npy_header(fh):
    """(shape, fortran_order, dtype) of an .npy stream, reading only its header."""
    fmt = np.lib.format
    version = fmt.read_magic(fh)
    if version == (1, 0):
        return fmt.read_array_header_1_0(fh)
    if version == (2, 0):
        return fmt.read_array_header_2_0(fh)
    raise ValueError(f"unsupported .npy format version {version}")


def read_npz(path, max_bytes: int, names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Read a ``.npz`` of plain arrays, refusing it before decompressing if it declares too much.

    Parameters
    ----------
    path : the .npz file.
    max_bytes : bound on the uncompressed size of all members together (bytes).
    names : read only these members (others are size-checked, not read); None for all.

    Returns
    -------
    {name: array}. Raises :class:`UnsafeFileError` for a member that is not an ``.npy``, declares
    more than ``max_bytes``, an object/structured dtype, or a header that disagrees with its size;
    :class:`DamagedFileError` for a cut-short or corrupt file (both are DaHyFUserErrors).
    """
    path = Path(path)
    try:
        return _read_npz(path, max_bytes, names)
    except (UnsafeFileError, MemoryError, PermissionError, FileNotFoundError, IsADirectoryError):
        raise
    except Exception as exc:  # zipfile, zlib and numpy's many ways of saying "damaged"
        raise DamagedFileError(f"{path.name} is damaged or not an .npz file ({type(exc).__name__}: "
                               f"{' '.join(str(exc).split())[:200]}).") from exc


def _read_npz(path: Path, max_bytes: int, names) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        if len(infos) > _MAX_NPZ_MEMBERS:
            raise UnsafeFileError(f"{path.name} holds {len(infos)} entries; a dahyf .npz has at most {_MAX_NPZ_MEMBERS}.")
        total = sum(i.file_size for i in infos)
        if total > max_bytes:
            raise UnsafeFileError(f"{path.name} would decompress to {total / 2**20:.0f} MiB, more than the "
                                  f"{max_bytes / 2**20:.0f} MiB allowed; refused before reading it.")
        for info in infos:
            if not info.filename.endswith(".npy") or info.is_dir():
                raise UnsafeFileError(f"{path.name} holds {info.filename!r}, which is not an array (.npy).")
            name = info.filename[:-4]
            if names is not None and name not in names:
                continue
            with zf.open(info) as fh:
                shape, fortran, dtype = _npy_header(fh)
                if dtype.kind not in _NPZ_KINDS or dtype.hasobject or dtype.fields is not None:
                    raise UnsafeFileError(f"{path.name}: array {name!r} has dtype {dtype}; only plain numbers, "
                                          "booleans and strings are read.")
                nbytes = math.prod(shape) * dtype.itemsize
                if nbytes != info.file_size - fh.tell():
                    raise UnsafeFileError(f"{path.name}: array {name!r} declares shape {shape} ({nbytes} bytes) "
                                          f"but holds {info.file_size - fh.tell()} bytes.")
            with zf.open(info) as fh:
                out[name] = np.lib.format.read_array(fh, allow_pickle=False)
    return out
