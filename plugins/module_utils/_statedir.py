# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: the collection's root-owned state directory on a host.  May change without notice.
"""``/run/netfleet-overlay``: a directory that only root can write, for the host lock and the ownership record.

World-writable directories (``/run/lock``, ``/tmp``) let any user plant a symlink where root will write, or hold a
file open and block root. Everything the collection keeps on a host lives here instead:

- the directory is created with mode 0700 and must be a real directory (not a symlink) owned by root (the
  effective uid) with no group or other bits; anything else is refused, never repaired silently;
- files are opened relative to the directory's descriptor with ``O_NOFOLLOW``, created with mode 0600, and
  checked with ``fstat``: owned by root, one link, a regular file;
- records are replaced atomically (a temporary file, then ``rename``), so a crash leaves the old one or the new one.

``/run`` is a tmpfs that the kernel empties at boot, like the named network namespaces in ``/run/netns``: what the
directory records lives exactly as long as what it describes.
"""

from __future__ import annotations

import contextlib
import os
import stat

STATE_DIR = "/run/netfleet-overlay"


class StateDirError(Exception):
    """The state directory or a file in it is not what root alone could have made; the message says what."""


def _check_dir(path: str, st: os.stat_result) -> None:
    if not stat.S_ISDIR(st.st_mode):
        raise StateDirError(f"{path} is not a directory (a symlink or a file is there); remove it and run again")
    if st.st_uid != os.geteuid():
        raise StateDirError(
            f"{path} is owned by uid {st.st_uid}, not by root (uid {os.geteuid()}): another user made it; remove it"
            " and run again"
        )
    if st.st_mode & 0o077:
        raise StateDirError(
            f"{path} has mode {stat.S_IMODE(st.st_mode):04o}; it must be 0700 (only root may read or write it):"
            f" run chmod 0700 {path}"
        )


def open_dir(path: str = STATE_DIR) -> int:
    """A descriptor of the state directory, created 0700 when missing; raises :class:`StateDirError`."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise StateDirError(
            f"{path} cannot be opened as a directory ({exc.strerror}); remove it and run again"
        ) from None
    try:
        _check_dir(path, os.fstat(fd))
    except BaseException:
        os.close(fd)
        raise
    return fd


def _check_file(path: str, fd: int) -> None:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_nlink != 1:
        raise StateDirError(
            f"{path} is not a regular file with one link owned by root (uid {st.st_uid}, links {st.st_nlink});"
            " remove it and run again"
        )


def open_file(name: str, flags: int = os.O_RDWR | os.O_CREAT, path: str = STATE_DIR) -> int:
    """Open ``name`` in the state directory without following links; created 0600, checked with ``fstat``."""
    dir_fd = open_dir(path)
    full = os.path.join(path, name)
    try:
        fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    except OSError as exc:
        raise StateDirError(f"{full} cannot be opened ({exc.strerror}); remove it and run again") from None
    finally:
        os.close(dir_fd)
    try:
        _check_file(full, fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_text(name: str, path: str = STATE_DIR) -> str | None:
    """The text of ``name`` in the state directory, or None when it does not exist."""
    try:
        fd = open_file(name, os.O_RDONLY, path)
    except StateDirError:
        if not os.path.lexists(os.path.join(path, name)):
            return None
        raise
    with os.fdopen(fd, "r", encoding="utf-8", errors="strict") as handle:
        return handle.read()


def write_text(name: str, text: str, path: str = STATE_DIR) -> None:
    """Replace ``name`` in the state directory with ``text`` atomically (temporary file, fsync, rename)."""
    dir_fd = open_dir(path)
    try:
        replace_at(dir_fd, name, text)
    finally:
        os.close(dir_fd)


def replace_at(dir_fd: int, name: str, text: str, mode: int = 0o600) -> None:
    """Replace ``name`` in the directory ``dir_fd`` with ``text`` atomically: a temporary file (never following a
    link, ``mode`` whatever the umask), fsync, rename."""
    temp = f".{name}.{os.getpid()}.tmp"
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp, dir_fd=dir_fd)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(fd, mode)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp, dir_fd=dir_fd)


def remove(name: str, path: str = STATE_DIR) -> None:
    """Remove ``name`` from the state directory, if it is there."""
    if not os.path.isdir(path):
        return
    dir_fd = open_dir(path)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
