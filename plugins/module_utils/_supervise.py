# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: supervising a daemon the module started itself (no systemd).  May change without notice.
"""A daemon of ours, where systemd is not PID 1 (the lab): started detached, recognised by pid, start time,
command line and network namespace, and stopped by that recorded pid only.

The DNS servers (:mod:`._dns`, dnsmasq in ``ovl-<vni>``) and the userspace WireGuard daemon (:mod:`._wireguard`,
``wireguard-go`` in the host namespace) share this. A record is ``<pid> <start time>``; a pid that the kernel
reused for another process has another start time, so nothing is ever signalled on a guess, and nothing is ever
killed by name.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import subprocess
import time

from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl import sock

STOP_TIMEOUT = 5.0


def stat_fields(pid: int, proc: str = "/proc") -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name (which may hold spaces and parentheses): the
    state first, the start time at index 19."""
    with open(os.path.join(proc, str(pid), "stat"), encoding="utf-8") as handle:
        return handle.read().rpartition(")")[2].split()


def starttime(pid: int, proc: str = "/proc") -> str:
    return stat_fields(pid, proc)[19]


def process_problem(
    pid: int, start: str, expected: list[str], netns_file: str | None, proc: str = "/proc"
) -> str | None:
    """Why ``pid`` is not the process this module started (None: it is): gone, a zombie, another process that got
    the pid (start time), another command line, or another network namespace than ``netns_file`` (None: not
    checked, for a netns that is gone, when only the command line and the start time can tell)."""
    base = os.path.join(proc, str(pid))
    try:
        fields = stat_fields(pid, proc)
        with open(os.path.join(base, "cmdline"), "rb") as handle:
            cmdline = [part.decode("utf-8", "replace") for part in handle.read().split(b"\0")[:-1]]
        ns = os.stat(os.path.join(base, "ns", "net"))
    except FileNotFoundError:
        return f"process {pid} is gone"
    if fields[0] in ("Z", "X"):
        return f"process {pid} has exited"
    if fields[19] != start:
        return f"process {pid} is another process (it started at {fields[19]}, ours at {start})"
    if cmdline != expected:
        return f"process {pid} runs {' '.join(cmdline)!r}, not {' '.join(expected)!r}"
    if netns_file is None:
        return None
    try:
        want = os.stat(netns_file)
    except FileNotFoundError:
        return f"{netns_file} is gone"
    if (ns.st_dev, ns.st_ino) != (want.st_dev, want.st_ino):
        return f"process {pid} is not in the network namespace {netns_file}"
    return None


def parse_record(text: str | None) -> tuple[int, str] | None:
    """``(pid, start time)`` from a record's text; None when there is none or it is not a record."""
    try:
        pid_text, start = (text or "").split()
        return int(pid_text), start
    except ValueError:
        return None


def record_text(pid: int, proc: str = "/proc") -> str:
    return f"{pid} {starttime(pid, proc)}\n"


def spawn(argv: list[str], log_fd: int, netns: str | None = None, env: dict | None = None) -> subprocess.Popen:
    """Start ``argv`` in a session of its own (stdin and stdout to /dev/null, stderr to ``log_fd``), inside the
    named ``netns`` (None: this process's). Raises OSError or SubprocessError."""
    preexec = None
    if netns:
        # the module runs one thread here; libc is loaded before the fork
        preexec = functools.partial(sock.enter_netns, netns, ctypes.CDLL(None, use_errno=True))
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log_fd,
        close_fds=True,
        start_new_session=True,
        env=env,
        preexec_fn=preexec,  # noqa: PLW1509
    )


def gone(pid: int, child: subprocess.Popen | None = None, proc: str = "/proc") -> bool:
    """Whether ``pid`` has exited (reaped when it is our child, else a zombie or no longer there)."""
    if child is not None:
        return child.poll() is not None
    try:
        return stat_fields(pid, proc)[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def terminate(pid: int, child: subprocess.Popen | None = None, proc: str = "/proc", timeout: float = STOP_TIMEOUT):
    """Stop a verified process of ours: SIGTERM, then SIGKILL if it is still there after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    with contextlib.suppress(ProcessLookupError):  # it may have exited since it was checked
        os.kill(pid, signal.SIGTERM)
        while not gone(pid, child, proc):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                deadline = float("inf")
            time.sleep(0.02)
