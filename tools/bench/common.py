# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every benchmark shares: the time budget, timed subprocesses (with peak memory), medians, verdicts."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from devenv import BIN, ansible_env

PLAYBOOKS = Path(__file__).resolve().parent / "playbooks"
CALLBACKS = Path(__file__).resolve().parent / "callback"
IP = shutil.which("ip") or "/usr/sbin/ip"
BRIDGE = shutil.which("bridge") or "/usr/sbin/bridge"


def log(msg: str) -> None:
    print(msg, flush=True)


class Budget:
    """The whole run's time budget: every expensive step asks how much is left before it starts."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.start = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        return self.seconds - self.elapsed()


@dataclass
class Timed:
    """One timed subprocess: wall seconds, exit status, peak memory, output."""

    seconds: float
    returncode: int | None  # None: killed at its timeout
    peak_kib: int  # VmHWM of the process itself (for ansible-playbook: the controller)
    children_peak_kib: int  # the largest VmHWM seen among its direct children (ansible's workers)
    stdout: str = ""
    stderr: str = ""
    cpu_seconds: float = 0.0  # user + system CPU of the process and of the children it waited for (wait4)

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


def _hwm_kib(pid: int) -> int:
    """Peak resident memory of a live process (``VmHWM``), 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="utf-8") as f:
            return [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return []


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in _children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def _kill_tree(pid: int) -> None:
    """SIGKILL a process we started and everything it started, by pid: its session, and each descendant on its
    own (Ansible's workers call setsid, so they are not in the session; they are found before the parent dies).
    """
    for target in [pid, *_descendants(pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, signal.SIGSTOP)  # nothing forks any more while the tree is collected
    tree = [pid, *_descendants(pid)]
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    for target in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, signal.SIGKILL)


def run_timed(argv: list[str], *, timeout: float, env: dict | None = None, cwd: Path | None = None) -> Timed:
    """Run ``argv`` in its own session, timed with ``perf_counter``; kill that session at ``timeout``.

    Peak memory is polled from /proc (``VmHWM``, every 50 ms): ``wait4``'s ``ru_maxrss`` would not do, since
    Linux carries a forked child's maximum across ``exec``, so every child would report at least this (large)
    process's own size. ``wait4``'s CPU times do: they are the process's own plus those of every child it
    waited for (Ansible's workers), and other processes' load on the machine moves them far less than wall time.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=cwd, start_new_session=True)
        deadline = start + max(timeout, 0.1)
        status = usage = None
        peak = children_peak = 0
        polls = 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if polls % 10 == 0:
                peak = max(peak, _hwm_kib(proc.pid))
                children_peak = max([children_peak, *(_hwm_kib(child) for child in _children(proc.pid))])
            polls += 1
            if time.perf_counter() >= deadline:
                _kill_tree(proc.pid)
                usage = os.wait4(proc.pid, 0)[2]
                status = None
                break
            time.sleep(0.005)
        seconds = time.perf_counter() - start
        proc.returncode = -1 if status is None else os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Timed(
            seconds=seconds,
            returncode=None if status is None else proc.returncode,
            peak_kib=peak,
            children_peak_kib=children_peak,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
            cpu_seconds=usage.ru_utime + usage.ru_stime if usage is not None else 0.0,
        )


def sh(*argv: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if check and proc.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def median(values) -> float | None:
    values = [x for x in values if x is not None]
    return statistics.median(values) if values else None


@dataclass
class Check:
    """One target: what was measured, the ratio against its target and the verdict."""

    bench: str
    target: str
    measured: str
    ratio: float | None
    limit: float | None  # None: no target, the figure is reported for information
    higher_is_better: bool = False
    note: str = ""  # what report.explain needs: a profile, a fleet size
    lower_bound: bool = False  # the ratio is a lower bound (a run hit its time limit)
    why: str = ""  # filled in for a missed target
    unit: str = "x"  # "x": a ratio; "s": the measured value itself, in seconds; "packets": a count of packets

    @property
    def verdict(self) -> str:
        if self.limit is None:
            return "(no target)"
        if self.ratio is None:
            return "NOT MEASURED"
        ok = self.ratio >= self.limit if self.higher_is_better else self.ratio <= self.limit
        if self.lower_bound and not ok and self.higher_is_better:
            return "NOT DECIDED"  # a lower bound below the target says nothing
        if self.lower_bound and ok and not self.higher_is_better:
            return "NOT DECIDED"
        return "MET" if ok else "MISSED"

    def ratio_text(self) -> str:
        if self.ratio is None:
            return "-"
        sign = ">= " if self.lower_bound else ""
        if self.unit == "s":
            return f"{sign}{self.ratio:.2f} s"
        if self.unit == "packets":
            return f"{sign}{self.ratio:.0f} packets"
        return f"{sign}{self.ratio:.2f}x" if self.ratio < 100 else f"{sign}{self.ratio:.0f}x"


@dataclass
class Results:
    """Everything one run measured, for the console, the markdown and the plot."""

    started: str = ""
    machine: dict = field(default_factory=dict)
    forks: int | None = None
    forks_note: str = ""
    sections: dict = field(default_factory=dict)  # name -> {"title", "columns", "rows", "notes"}
    checks: list[Check] = field(default_factory=list)
    plot: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # raw figures the report's explanations quote
    total_seconds: float = 0.0

    def section(self, name: str, title: str, columns: list[str]) -> dict:
        self.sections[name] = {"title": title, "columns": columns, "rows": [], "notes": []}
        return self.sections[name]


def fmt_s(seconds: float | None, *, lower_bound: bool = False) -> str:
    if seconds is None:
        return "-"
    sign = "> " if lower_bound else ""
    if abs(seconds) < 0.1:
        return f"{sign}{seconds * 1000:.1f} ms"
    return f"{sign}{seconds:.2f} s"


def playbook_env(forks: int, timer_out: Path | None = None) -> dict:
    """The environment `make` gives ansible-playbook, plus the forks and the per-task timer callback."""
    env = ansible_env(ANSIBLE_FORKS=str(forks), ANSIBLE_CALLBACK_PLUGINS=str(CALLBACKS))
    if timer_out is not None:
        env["ANSIBLE_CALLBACKS_ENABLED"] = "bench_timer"
        env["NETFLEET_BENCH_TIMER"] = str(timer_out)
    return env


def read_timer(path: Path) -> list[dict]:
    """Per-task wall times written by the bench_timer callback (empty when the run died before the end)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))["tasks"]
    except (OSError, ValueError, KeyError):
        return []


def machine_facts() -> dict:
    def version(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "?"

    mem_kib = 0
    with open("/proc/meminfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    cpu = "?"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    facts = {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "iproute2": version([IP, "-V"]),
        "load average (start)": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    probe = (
        "import ansible.release, pyroute2, matplotlib;"
        "print(ansible.release.__version__, pyroute2.__version__, matplotlib.__version__)"
    )
    versions = version([str(BIN / "python"), "-c", probe]).split()
    if len(versions) == 3:
        facts["ansible-core"], facts["pyroute2"], facts["matplotlib"] = versions
    return facts


def require_root() -> None:
    if os.geteuid() != 0:
        sys.exit("make bench needs root: it creates network namespaces and a lab (nothing in the machine's own)")
