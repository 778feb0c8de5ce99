# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: the per-host lock that serialises converges of one host.  May change without notice.
"""One writer at a time per host: an exclusive ``flock`` on ``/run/netfleet-overlay/host.lock``.

Two runs that change the same host at once (two ``ansible-playbook`` processes, a cron job and a person)
would otherwise interleave their reads and writes of the same kernel objects.  Every module that writes takes it.

The lock file lives in the collection's root-owned 0700 state directory (:mod:`._statedir`), never in a
world-writable one such as ``/run/lock``: there, any user could plant a symlink that root would follow and
overwrite, or hold the file's ``flock`` and block every converge.  Here it is opened without following links,
created 0600 and checked with ``fstat`` (owned by root, one link), and no other user can open it at all.

``/run`` is per host (and per lab host, whose ``/run`` is private) and emptied at reboot; the kernel drops the
lock when the holder exits, however it exits.  The file holds the pid of the current holder, for the timeout
message.  ``flock /run/netfleet-overlay/host.lock <command>`` (util-linux, as root) takes the same lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time

from ansible_collections.netfleet.overlay.plugins.module_utils import _statedir
from ansible_collections.netfleet.overlay.plugins.module_utils._module import ModuleError

LOCK_NAME = "host.lock"
LOCK_PATH = os.path.join(_statedir.STATE_DIR, LOCK_NAME)
DEFAULT_TIMEOUT = 300


class LockTimeout(ModuleError):
    """The lock was not free within the timeout, or its file is unsafe; the message names the file."""


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        if text.isdigit():
            return f"pid {text}"
    return "an unknown process"


def _open(path: str) -> int:
    """The lock file's descriptor, through the state directory's checks (no symlink, root-owned, one link)."""
    try:
        return _statedir.open_file(os.path.basename(path), os.O_RDWR | os.O_CREAT, os.path.dirname(path))
    except _statedir.StateDirError as exc:
        raise LockTimeout(f"cannot take the host lock {path}: {exc}") from None


@contextlib.contextmanager
def host_lock(timeout: float = DEFAULT_TIMEOUT, path: str = LOCK_PATH, poll: float = 0.1):
    """Hold the host's converge lock for the ``with`` block; wait at most ``timeout`` seconds for it.

    ``path`` is the lock file; its directory must be root's alone (tests pass a private temporary one).
    """
    fd = _open(path)
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
