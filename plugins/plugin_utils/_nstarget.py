# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: how the nsenter connection and tools/netfleet-lab make sure a pid is still the lab host they started.
# Standard library only (tools/netfleet-lab loads this file by path).  May change without notice.
"""A process to enter, checked against the record made when it was started, then entered through fds opened once.

A bare pid is not an identity: a holder that dies other than by ``netfleet-lab stop``/``down`` (an OOM kill) leaves
its pidfile behind, and the next process to get that pid would be entered as root.  That could be a service with
only a private network namespace (the task then acts on the real machine) or an unprivileged user's
``unshare -Urmn`` sandbox (whose ``/bin/sh`` would run as real root).  So a target is entered only when:

- its start time (``/proc/PID/stat`` field 22) is the one recorded with its pid: a reused pid has another one;
- its user namespace is the controller's: another one belongs to whoever made it;
- its mount, UTS, IPC, PID and network namespaces all differ from the controller's: a shared one would be the
  machine itself;
- its namespaces are the ones recorded (when a record exists).

The namespace files are opened once, checked through those descriptors (``fstat``), and the start time is read
again afterwards: if it still matches, the descriptors belong to the recorded process, whatever happens to the
pid later.  ``nsenter`` then enters ``/proc/<holder of the fds>/fd/N``, never ``/proc/PID/ns/*`` again.
"""

from __future__ import annotations

import os

# /proc/PID/ns name -> the nsenter option that enters it
ENTERED = {"mnt": "--mount", "uts": "--uts", "ipc": "--ipc", "net": "--net", "pid": "--pid"}
KINDS = ("user", *ENTERED)
RESTART = "restart the lab (tools/netfleet-lab down, then up) so that it writes a complete pidfile"


class TargetError(Exception):
    """The process must not be entered; the message says why."""


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (clock ticks after boot), or None when the process is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # fields[0] is field 3 (the state), so field 22 is fields[19]
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _ns_id(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def controller_namespaces() -> dict[str, tuple[int, int]]:
    """The namespaces of this process, by kind."""
    found = {}
    for kind in KINDS:
        st = os.stat(f"/proc/self/ns/{kind}")
        found[kind] = (st.st_dev, st.st_ino)
    return found


def format_record(pid: int, start: int, namespaces: dict[str, tuple[int, int]]) -> str:
    """One pidfile line: the pid first (what ``read pid _`` and older readers take), then ``key=value`` words."""
    dev = namespaces["net"][0]
    words = [str(pid), f"start={start}", f"nsdev={dev}"]
    words += [f"{kind}={namespaces[kind][1]}" for kind in KINDS]
    return " ".join(words) + "\n"


def parse_record(text: str, source: str) -> dict:
    """``{'pid', 'start', 'ns': {kind: (dev, ino)}}`` from a pidfile line; raises :class:`TargetError`."""
    words = text.split()
    if not words or not words[0].isdigit() or int(words[0]) <= 1:
        raise TargetError(f"{source} does not hold a pid: {text[:40]!r}")
    if len(words) == 1:
        raise TargetError(
            f"{source} holds a bare pid, without the start time and namespaces that tell the lab host from a "
            f"process that got its pid later; {RESTART}"
        )
    fields = dict(word.partition("=")[::2] for word in words[1:])
    try:
        dev = int(fields["nsdev"])
        record = {
            "pid": int(words[0]),
            "start": int(fields["start"]),
            "ns": {kind: (dev, int(fields[kind])) for kind in KINDS},
        }
    except (KeyError, ValueError):
        raise TargetError(f"{source} is not a complete holder record: {text.strip()[:200]!r}; {RESTART}") from None
    return record


def record_of(pid: int) -> str:
    """The pidfile line of a live process (what tools/netfleet-lab writes when it starts a host)."""
    start = start_time(pid)
    namespaces = {}
    for kind in KINDS:
        st = os.stat(f"/proc/{pid}/ns/{kind}")
        namespaces[kind] = (st.st_dev, st.st_ino)
    if start is None or start_time(pid) != start:
        raise TargetError(f"pid {pid} exited while it was being recorded")
    return format_record(pid, start, namespaces)


class Target:
    """Descriptors of a checked process's namespaces, held until :meth:`close`."""

    def __init__(self, pid: int, what: str, record: dict | None = None):
        """Open and check; ``record`` (from :func:`parse_record`) pins the start time and namespaces."""
        self.pid, self.what = pid, what
        self.fds: dict[str, int] = {}
        try:
            self._open(record)
        except BaseException:
            self.close()
            raise

    def _open(self, record: dict | None) -> None:
        pid, what = self.pid, self.what
        start = start_time(pid)
        if start is None:
            raise TargetError(f"{what}: process is not running")
        if record is not None and start != record["start"]:
            raise TargetError(
                f"refusing {what}: its start time {start} is not the recorded {record['start']}, so the pid now "
                f"belongs to another process (the lab host died and the pid was reused); {RESTART}"
            )
        for kind in KINDS:
            try:
                self.fds[kind] = os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                raise TargetError(f"{what}: cannot open its {kind} namespace: {exc.strerror}") from None
        if start_time(pid) != start:  # the same start time after the opens: the fds are that process's
            raise TargetError(f"{what}: the process exited while its namespaces were being opened")
        self.start = start
        ids = {kind: _ns_id(fd) for kind, fd in self.fds.items()}
        ours = controller_namespaces()
        if ids["user"] != ours["user"]:
            raise TargetError(
                f"refusing {what}: it is in another user namespace than the controller (an unprivileged user's "
                "sandbox, such as `unshare -Urmn`): its files and programs are that user's, and the task would run "
                "them as real root"
            )
        shared = [kind for kind in ENTERED if ids[kind] == ours[kind]]
        if shared:
            raise TargetError(
                f"refusing {what}: it shares the controller's own {', '.join(shared)} namespace"
                f"{'s' if len(shared) > 1 else ''} (a process such as a service with only a private network "
                "namespace, not a lab host): the task would act on the controller itself"
            )
        if record is not None:
            moved = [kind for kind in KINDS if ids[kind] != record["ns"][kind]]
            if moved:
                raise TargetError(
                    f"refusing {what}: its {', '.join(moved)} namespaces are not the ones recorded when the lab "
                    f"started it; {RESTART}"
                )

    def alive(self) -> bool:
        """True while the process that owned the pid when it was checked still runs."""
        return start_time(self.pid) == self.start

    def nsenter_options(self, fd_dir: str) -> list[str]:
        """``--mount=FD_DIR/N ...``: nsenter enters these descriptors (``/proc/<their holder>/fd``), not the pid."""
        return [f"{option}={fd_dir}/{self.fds[kind]}" for kind, option in ENTERED.items()]

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds = {}
