# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""(a) and (b): the table engine against iproute2's batch mode and JSON dump, on identical vxlan devices.

Every device lives in a throwaway network namespace of this run (a unique prefix, removed at the end even on
failure): a veth pair ``ul0``/``ul1`` stands in for the underlay (``ul0`` 198.19.0.1/16, in 198.18.0.0/15) and
``vxlan0`` (VNI 4242, port 4789, ``local 198.19.0.1 dev ul0``, learning off, proxy on) carries the tables.
Nothing is sent anywhere: the entries are only written and read.
"""

from __future__ import annotations

import contextlib
import cProfile
import importlib
import io
import json
import os
import pstats
import resource
import secrets
import tempfile
import time
from pathlib import Path

from devenv import import_collection

from bench.common import BRIDGE, IP, Budget, Check, Results, fmt_s, log, median, sh
from bench.report import md_table

SIZES = (1000, 5000, 10000, 20000)
HEADLINE = 20000
VTEPS = 1000  # the FDB entries point at this many remote VTEPs
LOCAL = "198.19.0.1"
NETNS_DIR = Path("/run/netns")
REPS_CHEAP = 5  # repetitions of a measurement that takes less than CHEAP seconds
REPS_NO_CHANGE = 7  # (b): a no-change run and a dump take ~0.1 s each, and this machine's load comes and goes
CHEAP = 2.0


def _engine():
    """The collection's _rtnl.namespace and _table, imported the way Ansible finds them (.venv/collections)."""
    import_collection()
    base = "ansible_collections.netfleet.overlay.plugins.module_utils."
    return importlib.import_module(base + "_rtnl.namespace"), importlib.import_module(base + "_table")


def entries(table: str, count: int) -> list[dict]:
    """``count`` remote endpoints 10.224.0.2... with Docker-style MACs, spread over VTEPS VTEPs in 198.19/16."""
    out = []
    for i in range(count):
        ip_int = (10 << 24) | (224 << 16) | (i + 2)
        octets = [(ip_int >> s) & 255 for s in (24, 16, 8, 0)]
        mac = "02:42:" + ":".join(f"{o:02x}" for o in octets)
        if table == "fdb":
            vtep = i % VTEPS
            out.append({"mac": mac, "dst": f"198.19.{1 + vtep // 250}.{1 + vtep % 250}"})
        else:
            out.append({"ip": ".".join(map(str, octets)), "mac": mac})
    return out


def batch_lines(table: str, wanted: list[dict]) -> str:
    """The same entries as ``bridge -batch`` / ``ip -batch`` lines (the commands the planner reports)."""
    if table == "fdb":
        return "".join(f"fdb replace {e['mac']} dev vxlan0 dst {e['dst']} self permanent\n" for e in wanted)
    return "".join(f"neigh replace {e['ip']} lladdr {e['mac']} dev vxlan0 nud permanent\n" for e in wanted)


def dump_argv(table: str, ns: str) -> list[str]:
    if table == "fdb":
        return [BRIDGE, "-n", ns, "-j", "fdb", "show", "dev", "vxlan0"]
    return [IP, "-n", ns, "-j", "neigh", "show", "dev", "vxlan0"]


def read_back(table: str, ns: str) -> set[tuple]:
    """The device's permanent entries as iproute2 shows them."""
    rows = json.loads(sh(*dump_argv(table, ns)).stdout or "[]")
    if table == "fdb":
        return {(r["mac"], r.get("dst")) for r in rows if r.get("dst") and r.get("state") == "permanent"}
    return {(r["dst"], r.get("lladdr")) for r in rows if "PERMANENT" in (r.get("state") or [])}


def verify(table: str, ns: str, wanted: list[dict], who: str) -> str | None:
    """None when the device holds exactly ``wanted``, else what differs.

    The kernel's neighbour table is one hash table for every namespace, so a dump can be interrupted (and
    come back incomplete) while another namespace's entries change, for example while a namespace of an
    earlier run is being torn down in the background. A differing read is therefore retried a few times.
    """
    expected = {(e["mac"], e["dst"]) if table == "fdb" else (e["ip"], e["mac"]) for e in wanted}
    for attempt in range(4):
        got = read_back(table, ns)
        if got == expected:
            return None
        time.sleep(0.5 * (attempt + 1))
    return (
        f"{who} left {len(got)} entries, not the {len(expected)} wanted: {len(expected - got)} missing "
        f"(e.g. {sorted(expected - got)[:2]}), {len(got - expected)} unexpected (e.g. {sorted(got - expected)[:2]})"
    )


class Namespaces:
    """Throwaway namespaces named ``<prefix><n>``; every one of them is removed at the end, even on failure."""

    def __init__(self):
        self.prefix = "nfbench" + secrets.token_hex(3) + "-"
        self.count = 0
        self.owner = os.getpid()

    def fresh(self) -> str:
        """A new namespace with the underlay veth and vxlan0, as the collection builds them."""
        self.count += 1
        name = f"{self.prefix}{self.count}"
        sh(IP, "netns", "add", name)
        sh(IP, "-n", name, "link", "add", "ul0", "type", "veth", "peer", "name", "ul1")
        sh(IP, "-n", name, "addr", "add", f"{LOCAL}/16", "dev", "ul0")
        sh(IP, "-n", name, "link", "set", "ul0", "up")
        sh(IP, "-n", name, "link", "set", "ul1", "up")
        vxlan = ["vxlan0", "mtu", "1450", "type", "vxlan", "id", "4242", "dstport", "4789", "local", LOCAL]
        sh(IP, "-n", name, "link", "add", *vxlan, "dev", "ul0", "nolearning", "proxy")
        sh(IP, "-n", name, "link", "set", "vxlan0", "up")
        return name

    def drop(self, name: str) -> None:
        if (NETNS_DIR / name).exists():
            sh(IP, "netns", "del", name, check=False)

    def cleanup(self) -> None:
        if os.getpid() != self.owner:
            return  # a forked child (pyroute2's) must never remove the namespaces still in use
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(NETNS_DIR):
                if name.startswith(self.prefix):
                    self.drop(name)


def _cpu() -> float:
    """User + system CPU seconds of this process (every thread) and of the children it has waited for."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _reconcile(nl, table_mod, ns_name: str, table: str, wanted: list[dict], *, cpu: list | None = None):
    """One timed call of the engine: open the namespace, reconcile (state overridden), close.

    Returns ``(seconds, result)``; appends its CPU seconds to ``cpu`` when given.
    """
    spec = table_mod.FDB if table == "fdb" else table_mod.NEIGH
    cpu_start, start = _cpu(), time.perf_counter()
    with nl.Namespace(ns_name) as ns:
        result = table_mod.reconcile(ns, spec, dev="vxlan0", state="overridden", wanted=wanted, check_mode=False)
    seconds = time.perf_counter() - start
    if cpu is not None:
        cpu.append(_cpu() - cpu_start)
    return seconds, result


def _iproute2(argv: list[str], cpu: list) -> float:
    """Run one iproute2 command: its wall seconds; its CPU seconds are appended to ``cpu``."""
    cpu_start, start = _cpu(), time.perf_counter()
    sh(*argv)
    seconds = time.perf_counter() - start
    cpu.append(_cpu() - cpu_start)
    return seconds


def _batch(ns_name: str, table: str, path: Path, cpu: list) -> float:
    argv = [BRIDGE, "-n", ns_name, "-batch", str(path)] if table == "fdb" else [IP, "-n", ns_name, "-batch", str(path)]
    return _iproute2(argv, cpu)


def _dump(ns_name: str, table: str, cpu: list) -> float:
    return _iproute2(dump_argv(table, ns_name), cpu)


def _cpu_ratio(numerator: list, denominator: list) -> str:
    top, bottom = median(numerator), median(denominator)
    return f"{top / bottom:.2f}x" if top is not None and bottom else "-"


CPU_NOTE = (
    "CPU ratio: the same ratio of CPU time (user + system, of the engine's process or of the iproute2 command; "
    "the kernel's work for a request is done in the sender's system time), medians. Other processes' load on "
    "this machine moves it far less than the wall time the target is set on."
)


def profile(call) -> str:
    """Run ``call`` once under cProfile: its 8 most expensive functions (own time) as a markdown table."""
    prof = cProfile.Profile()
    prof.runcall(call)
    stats = pstats.Stats(prof, stream=io.StringIO())
    total = stats.total_tt
    rows = []
    for (path, line, func), row in sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:8]:
        calls, own, cumulative = row[1], row[2], row[3]
        where = f"{Path(path).name}:{line} {func}" if line else func
        rows.append([f"`{where}`", f"{calls:,}", f"{own:.3f} s", f"{cumulative:.3f} s", f"{100 * own / total:.0f}%"])
    table = md_table(["function", "calls", "own time", "cumulative", "share"], rows)
    return f"{table}\n\n(profiled total {total:.2f} s)"


def run(results: Results, budget: Budget, share: float) -> None:
    """Measure (a) and (b) within ``share`` seconds (at least one run of every headline figure)."""
    deadline = budget.elapsed() + share
    nl, table_mod = _engine()
    spaces = Namespaces()
    sec_a = results.section(
        "a",
        "(a) apply from empty: `_table.reconcile` vs `bridge -batch` / `ip -batch`",
        ["table", "entries", "reconcile", "rate", "iproute2 batch", "rate", "rate ratio", "CPU ratio", "runs"],
    )
    sec_a["notes"].append(CPU_NOTE)
    sec_b = results.section(
        "b",
        "(b) no-change reconcile vs iproute2 JSON dump (20k entries)",
        ["table", "entries", "no-change reconcile", "JSON dump", "ratio", "CPU ratio", "runs"],
    )
    sec_b["notes"].append(CPU_NOTE)
    plot = results.plot.setdefault("entries", {})
    try:
        with tempfile.TemporaryDirectory(prefix="nfbench-batch-") as tmp:
            for table in ("fdb", "neigh"):
                tool = "bridge -batch" if table == "fdb" else "ip -batch"
                for size in SIZES:
                    wanted = entries(table, size)
                    path = Path(tmp) / f"{table}-{size}.batch"
                    path.write_text(batch_lines(table, wanted), encoding="utf-8")
                    ours, theirs, errors = [], [], []
                    ours_cpu, theirs_cpu = [], []
                    headline = size == HEADLINE
                    kept = None  # the 20k reconcile device, kept for (b)
                    while True:
                        ns_ours, ns_theirs = spaces.fresh(), spaces.fresh()
                        # each goes first every other time: the kernel tears down the namespaces dropped just
                        # before in the background, and that slows whichever runs first a little
                        for who in ("ours", "theirs") if len(theirs) % 2 == 0 else ("theirs", "ours"):
                            if who == "theirs":
                                theirs.append(_batch(ns_theirs, table, path, theirs_cpu))
                                continue
                            try:
                                seconds, result = _reconcile(nl, table_mod, ns_ours, table, wanted, cpu=ours_cpu)
                                ours.append(seconds)
                                if len(result["ops"]) != size:
                                    errors.append(f"planned {len(result['ops'])} changes, expected {size}")
                            except Exception as exc:  # the engine is being rewritten: report, do not crash
                                errors.append(f"{type(exc).__name__}: {exc}")
                        if not errors:
                            for who, name in (("reconcile", ns_ours), (tool, ns_theirs)):
                                problem = verify(table, name, wanted, who)
                                if problem:
                                    errors.append(problem)
                        spaces.drop(ns_theirs)
                        if headline and kept is None and not errors:
                            kept = ns_ours
                        else:
                            spaces.drop(ns_ours)
                        if errors or len(ours) >= REPS_CHEAP:
                            break
                        if ours[-1] > CHEAP or budget.elapsed() + 2 * ours[-1] > deadline:
                            break
                    t_ours, t_theirs = median(ours), median(theirs)
                    rate_ours = size / t_ours if t_ours and not errors else None
                    rate_theirs = size / t_theirs
                    ratio = rate_ours / rate_theirs if rate_ours else None
                    sec_a["rows"].append(
                        [
                            table,
                            f"{size:,}",
                            fmt_s(t_ours) if not errors else "error",
                            f"{rate_ours / 1000:.1f}k/s" if rate_ours else "-",
                            fmt_s(t_theirs),
                            f"{rate_theirs / 1000:.1f}k/s",
                            f"{ratio:.2f}x" if ratio else "-",
                            _cpu_ratio(theirs_cpu, ours_cpu) if ratio else "-",
                            str(len(ours)),
                        ]
                    )
                    plot.setdefault(f"reconcile {table}", []).append((size, t_ours if not errors else None))
                    plot.setdefault(tool, []).append((size, t_theirs))
                    log(
                        f"  (a) {table} {size}: reconcile {fmt_s(t_ours)}, {tool} {fmt_s(t_theirs)}; "
                        f"CPU {fmt_s(median(ours_cpu))} vs {fmt_s(median(theirs_cpu))} {errors or ''}"
                    )
                    if errors:
                        sec_a["notes"].append(f"{table} {size}: {errors[0]}")
                    if headline:
                        results.checks.append(
                            Check(
                                "a",
                                f"apply {size // 1000}k {table} entries: rate >= 0.8x the {tool} rate",
                                f"{fmt_s(t_ours)} vs {fmt_s(t_theirs)}",
                                ratio,
                                0.8,
                                higher_is_better=True,
                            )
                        )
                        if ratio is not None and ratio < 0.8 and t_ours < 15 and budget.elapsed() + t_ours < deadline:
                            ns_prof = spaces.fresh()
                            results.checks[-1].note = profile(
                                lambda n=ns_prof, w=wanted, t=table: _reconcile(nl, table_mod, n, t, w)
                            )
                            spaces.drop(ns_prof)
                        _no_change(
                            results,
                            sec_b,
                            nl,
                            table_mod,
                            kept,
                            table=table,
                            wanted=wanted,
                            deadline=deadline,
                            budget=budget,
                        )
                        if kept:
                            spaces.drop(kept)
    finally:
        spaces.cleanup()


def _neighbour_entries() -> int | None:
    """The kernel's ARP + ND entries, of every namespace (one hash table each for all namespaces)."""
    total = 0
    for name in ("arp_cache", "ndisc_cache"):
        try:
            with open(f"/proc/net/stat/{name}", encoding="ascii") as stat:
                stat.readline()
                total += int(stat.readline().split()[0], 16)
        except (OSError, ValueError, IndexError):
            return None
    return total


def _settle_neighbours(limit: float = 5.0) -> None:
    """Wait (up to ``limit`` seconds) until the kernel's neighbour entries stop going down.

    The namespaces (a) dropped are torn down in the background, their 20k-entry tables with them; until then every
    neighbour dump, ours and ip's, walks those entries too (the hash table is shared by all namespaces).
    """
    end = time.monotonic() + limit
    last = _neighbour_entries()
    while last is not None and time.monotonic() < end:
        time.sleep(0.2)
        now = _neighbour_entries()
        if now is None or now >= last:
            return
        last = now


def _no_change(results, sec_b, nl, table_mod, ns_name, *, table, wanted, deadline, budget) -> None:
    """(b) on the 20k device that (a) reconciled: reconcile again (nothing to do) vs one JSON dump."""
    tool = "bridge -j fdb show" if table == "fdb" else "ip -j neigh show"
    ours, theirs, errors = [], [], []
    ours_cpu, theirs_cpu = [], []
    if ns_name is None:
        errors.append("no reconciled 20k table to start from (see (a))")
    if ns_name:
        _settle_neighbours()
    while ns_name and len(ours) < REPS_NO_CHANGE:
        if len(ours) % 2:  # each goes first every other time
            theirs.append(_dump(ns_name, table, theirs_cpu))
        try:
            seconds, result = _reconcile(nl, table_mod, ns_name, table, wanted, cpu=ours_cpu)
        except Exception as exc:  # the engine is being rewritten: report, do not crash
            errors.append(f"{type(exc).__name__}: {exc}")
            break
        if result["ops"]:
            errors.append(f"a no-change run planned {len(result['ops'])} changes")
            break
        ours.append(seconds)
        if len(ours) % 2:
            theirs.append(_dump(ns_name, table, theirs_cpu))
        if seconds > CHEAP or budget.elapsed() + 2 * seconds > deadline:
            break
    t_ours, t_theirs = median(ours), median(theirs)
    ratio = t_ours / t_theirs if t_ours and t_theirs else None
    sec_b["rows"].append(
        [
            table,
            f"{len(wanted):,}",
            fmt_s(t_ours),
            f"{fmt_s(t_theirs)} ({tool})",
            f"{ratio:.2f}x" if ratio else "-",
            _cpu_ratio(ours_cpu, theirs_cpu) if ratio else "-",
            str(len(ours)),
        ]
    )
    if errors:
        sec_b["notes"].append(f"{table}: {errors[0]}")
    log(
        f"  (b) {table}: no-change reconcile {fmt_s(t_ours)}, {tool} {fmt_s(t_theirs)}; "
        f"CPU {fmt_s(median(ours_cpu))} vs {fmt_s(median(theirs_cpu))} {errors or ''}"
    )
    check = Check(
        "b",
        f"no-change reconcile of {len(wanted) // 1000}k {table}: <= 1.5x `{tool}`",
        f"{fmt_s(t_ours)} vs {fmt_s(t_theirs)}",
        ratio,
        1.5,
    )
    results.checks.append(check)
    if ratio is not None and ratio > 1.5 and t_ours < 15 and budget.elapsed() + t_ours < deadline:
        check.note = profile(lambda: _reconcile(nl, table_mod, ns_name, table, wanted))
