# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: the per-host lock that serialises converges of one host.  May change without notice.
"""One converge at a time per host: an exclusive ``flock`` on ``/run/lock/netfleet-overlay.lock``.

Two runs that converge the same host at once (two ``ansible-playbook`` processes, a cron job and a person)
would otherwise interleave their reads and writes of the same kernel objects.  The lock lives in ``/run``, so it
is per host (and per lab host, whose ``/run`` is private) and vanishes at reboot; the kernel drops it when the
holder exits, however it exits.  The file holds the pid of the current holder, for the timeout message.
``flock /run/lock/netfleet-overlay.lock <command>`` (util-linux) takes the same lock from a shell.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time

LOCK_DIRS = ("/run/lock", "/run")
LOCK_NAME = "netfleet-overlay.lock"
DEFAULT_TIMEOUT = 300


class LockTimeout(Exception):
    """The lock was not free within the timeout; the message names the file and the holder."""


def lock_path() -> str:
    """/run/lock/netfleet-overlay.lock, or /run/netfleet-overlay.lock where /run/lock does not exist."""
    for directory in LOCK_DIRS:
        if os.path.isdir(directory):
            return os.path.join(directory, LOCK_NAME)
    return os.path.join(LOCK_DIRS[-1], LOCK_NAME)


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        if text.isdigit():
            return f"pid {text}"
    return "an unknown process"


@contextlib.contextmanager
def host_lock(timeout: float = DEFAULT_TIMEOUT, path: str | None = None, poll: float = 0.1):
    """Hold the host's converge lock for the ``with`` block; wait at most ``timeout`` seconds for it."""
    path = path or lock_path()
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        deadline = time.monotonic() + max(0.0, float(timeout))
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"another netfleet.overlay run has held the host lock {path} for more than {timeout} s "
                        f"(last recorded holder: {_holder(fd)}); wait for it to finish, or raise lock_timeout "
                        "(overlay_lock_timeout in the role)"
                    ) from None
                time.sleep(poll)
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield path
    finally:
        os.close(fd)  # closing the last descriptor releases the flock
