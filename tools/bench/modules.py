# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""(p) the public table modules through Ansible: one ``fdb`` and one ``neigh`` task of 100,000 entries.

What a user runs: ``ansible-playbook`` with one ``netfleet.overlay.fdb`` (or ``neigh``) task, ``state:
overridden``, its entries from a variable (a ``vars_files`` JSON file), on ``localhost`` with the local
connection, against a fresh ``vxlan0`` in a throwaway namespace (the same device as (a), from
:class:`bench.tables.Namespaces`). The task is timed as the play minus a no-op play: the same playbook, the same
``vars_files``, no task. iproute2 gets the same entries as one ``bridge -batch`` / ``ip -batch`` file on an
identical fresh device. Runs alternate (task play, no-op play, batch; each goes first in turn), every device is
read back after its run and must hold exactly the entries, and each figure is a median.

``NETFLEET_BENCH_BASELINE=DIR`` (a collections path whose ``ansible_collections/netfleet/overlay`` is another
version of the collection, e.g. ``git archive`` of an older commit) adds, in the same run and alternating with
the others, the same task play against that version: a before/after comparison side by side.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from bench.common import BIN, BRIDGE, IP, Budget, Check, Results, fmt_s, log, median, playbook_env
from bench.common import run_timed as timed
from bench.tables import Namespaces, batch_lines, entries, verify

SIZE = 100_000
TABLES = ("fdb", "neigh")
REPS = int(os.environ.get("NETFLEET_BENCH_REPS", "3"))  # pairs per table when the budget allows
TARGET = 0.5  # the task's rate over iproute2's batch rate
PLAY_TIMEOUT = 300.0


LIBRARY = Path(__file__).resolve().parent / "library"  # bench_sink


def write_playbook(path: Path, table: str, entries_file: Path, netns: str | None, *, sink: bool = False) -> None:
    """A play on localhost (local connection, no facts) loading ``entries_file``; ``netns`` None: no task.

    ``sink``: the task gives the entries to ``bench_sink`` (takes them, does nothing) instead of the module.
    """
    play = {
        "name": f"{table} through the public module" if netns else "no-op with the same variables",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "vars_files": [str(entries_file)],
        "tasks": [],
    }
    if sink:
        play["tasks"].append(
            {"name": f"{SIZE} entries, carried only", "bench_sink": {"entries": "{{ bench_entries }}"}}
        )
    elif netns:
        args = {"netns": netns, "dev": "vxlan0", "state": "overridden", "entries": "{{ bench_entries }}"}
        play["tasks"].append({"name": f"{SIZE} {table} entries", f"netfleet.overlay.{table}": args})
    path.write_text(json.dumps([play], indent=1), encoding="utf-8")  # JSON is YAML


BASELINE = os.environ.get("NETFLEET_BENCH_BASELINE")


def _play(playbook: Path, timeout: float, collections: str | None = None):
    argv = [str(BIN / "ansible-playbook"), "-i", "localhost,", str(playbook)]
    env = playbook_env(1)
    env["ANSIBLE_LIBRARY"] = str(LIBRARY)
    if collections:
        env["ANSIBLE_COLLECTIONS_PATH"] = collections
    run = timed(argv, timeout=timeout, env=env)
    if run.returncode != 0:
        tail = (run.stdout + run.stderr).strip().splitlines()[-12:]
        what = "timed out" if run.returncode is None else f"failed ({run.returncode})"
        raise RuntimeError(f"ansible-playbook {playbook.name} {what}:\n" + "\n".join(tail))
    return run


def _batch(table: str, netns: str, path: Path, timeout: float):
    tool = BRIDGE if table == "fdb" else IP
    run = timed([tool, "-n", netns, "-batch", str(path)], timeout=timeout)
    if run.returncode != 0:
        raise RuntimeError(f"{tool} -batch failed: {(run.stdout + run.stderr).strip()[-400:]}")
    return run


def _cpu_ratio(cpu: dict, kind: str) -> str:
    """The rate ratio in CPU seconds: the batch's over (``kind``'s play - the no-op play's), medians."""
    top, base, bottom = median(cpu["batch"]), median(cpu["noop"]), median(cpu[kind])
    if None in (top, base, bottom) or bottom - base <= 0:
        return "-"
    return f"{top / (bottom - base):.2f}x"


def run(results: Results, budget: Budget, work: Path, share: float) -> None:
    """Measure (p) within ``share`` seconds: at least one task play, no-op play and batch per table."""
    deadline = budget.elapsed() + share
    sec = results.section(
        "p",
        f"(p) one public module task, {SIZE:,} entries, state overridden: play minus no-op play vs iproute2 batch",
        [
            "table",
            "task play",
            "no-op play",
            "task",
            "rate",
            "iproute2 batch",
            "rate",
            "rate ratio",
            "CPU ratio",
            "carry only",
            "runs",
        ],
    )
    sec["notes"].append(
        "task = task play - no-op play (the same playbook and vars_files, no task), medians; the task play runs "
        "ansible-playbook -i localhost, with the local connection against a fresh vxlan0 in a namespace of this "
        "run, from empty to the entries. carry only = the same play with the entries given to bench_sink "
        "(tools/bench/library: a module that takes them and does nothing) minus the no-op play: what Ansible "
        "itself costs to template the variable, send it to a module and check it there, the floor of any module."
    )
    sec["notes"].append(
        "CPU ratio: the rate ratio in CPU seconds (user + system of ansible-playbook with its workers and modules, "
        "of bridge/ip with the kernel's work for them), medians; other processes' load moves it far less than "
        "the wall time the target is set on."
    )
    spaces = Namespaces()
    work.mkdir(parents=True, exist_ok=True)
    try:
        for table in TABLES:
            wanted = entries(table, SIZE)
            data = work / f"p-{table}-entries.json"
            data.write_text(json.dumps({"bench_entries": wanted}), encoding="utf-8")
            batch = work / f"p-{table}.batch"
            batch.write_text(batch_lines(table, wanted), encoding="utf-8")
            noop_book, task_book = work / f"p-{table}-noop.yml", work / f"p-{table}-task.yml"
            write_playbook(noop_book, table, data, None)
            sink_book = work / f"p-{table}-sink.yml"
            write_playbook(sink_book, table, data, None, sink=True)
            tool = "bridge -batch" if table == "fdb" else "ip -batch"
            base_book = work / f"p-{table}-baseline.yml"
            plays, noops, batches, bases, sinks, errors = [], [], [], [], [], []
            cpu: dict[str, list] = {"task": [], "noop": [], "sink": [], "batch": [], "baseline": []}
            while len(plays) < REPS:
                ns_task, ns_batch = spaces.fresh(), spaces.fresh()
                ns_base = spaces.fresh() if BASELINE else None
                write_playbook(task_book, table, data, ns_task)
                order = ["task", "noop", "sink", "batch"] + (["baseline"] if BASELINE else [])
                if len(plays) % 2:
                    order.reverse()
                try:
                    for who in order:
                        if who == "task":
                            plays.append(_play(task_book, PLAY_TIMEOUT))
                            cpu["task"].append(plays[-1].cpu_seconds)
                        elif who == "noop":
                            run_ = _play(noop_book, 120)
                            noops.append(run_.seconds)
                            cpu["noop"].append(run_.cpu_seconds)
                        elif who == "sink":
                            run_ = _play(sink_book, PLAY_TIMEOUT)
                            sinks.append(run_.seconds)
                            cpu["sink"].append(run_.cpu_seconds)
                        elif who == "batch":
                            run_ = _batch(table, ns_batch, batch, 120)
                            batches.append(run_.seconds)
                            cpu["batch"].append(run_.cpu_seconds)
                        else:
                            write_playbook(base_book, table, data, ns_base)
                            run_ = _play(base_book, PLAY_TIMEOUT, BASELINE)
                            bases.append(run_.seconds)
                            cpu["baseline"].append(run_.cpu_seconds)
                    checked = [("the task", ns_task), (tool, ns_batch)] + (
                        [("the baseline", ns_base)] if BASELINE else []
                    )
                    for who, name in checked:
                        problem = verify(table, name, wanted, who)
                        if problem:
                            errors.append(problem)
                except RuntimeError as exc:
                    errors.append(str(exc))
                finally:
                    for name in (ns_task, ns_batch, ns_base):
                        if name:
                            spaces.drop(name)
                if errors:
                    break
                each = plays[-1].seconds + noops[-1] + sinks[-1] + batches[-1] + (bases[-1] if bases else 0)
                if budget.elapsed() + each > deadline:
                    break
            play_s = median(p.seconds for p in plays)
            noop_s, batch_s = median(noops), median(batches)
            task_s = play_s - noop_s if play_s is not None and noop_s is not None and not errors else None
            sink_s = median(sinks) - noop_s if sinks and noop_s is not None else None

            rate = SIZE / task_s if task_s and task_s > 0 else None
            batch_rate = SIZE / batch_s if batch_s else None
            ratio = rate / batch_rate if rate and batch_rate else None
            sec["rows"].append(
                [
                    table,
                    fmt_s(play_s),
                    fmt_s(noop_s),
                    fmt_s(task_s) if task_s is not None else "error",
                    f"{rate / 1000:.1f}k/s" if rate else "-",
                    fmt_s(batch_s),
                    f"{batch_rate / 1000:.1f}k/s" if batch_rate else "-",
                    f"{ratio:.2f}x" if ratio else "-",
                    _cpu_ratio(cpu, "task") if ratio else "-",
                    fmt_s(sink_s),
                    str(len(plays)),
                ]
            )
            if errors:
                sec["notes"].append(f"{table}: {errors[0][:600]}")
            if bases and noop_s is not None:
                base_task = median(bases) - noop_s
                base_ratio = (SIZE / base_task) / batch_rate if base_task > 0 and batch_rate else None
                sec["rows"].append(
                    [
                        f"{table} (baseline)",
                        fmt_s(median(bases)),
                        fmt_s(noop_s),
                        fmt_s(base_task),
                        f"{SIZE / base_task / 1000:.1f}k/s" if base_task > 0 else "-",
                        fmt_s(batch_s),
                        f"{batch_rate / 1000:.1f}k/s" if batch_rate else "-",
                        f"{base_ratio:.2f}x" if base_ratio else "-",
                        _cpu_ratio(cpu, "baseline"),
                        fmt_s(sink_s),
                        str(len(bases)),
                    ]
                )
                log(f"  (p) {table} baseline ({BASELINE}): plays {', '.join(fmt_s(b) for b in bases)}")
            log(
                f"  (p) {table} {SIZE}: task play {fmt_s(play_s)} (runs {', '.join(fmt_s(p.seconds) for p in plays)}),"
                f" no-op {fmt_s(noop_s)}, task {fmt_s(task_s)}, carry only {fmt_s(sink_s)}; {tool} {fmt_s(batch_s)};"
                f" CPU: task play {fmt_s(median(cpu['task']))}, no-op {fmt_s(median(cpu['noop']))}, carry only"
                f" {fmt_s(median(cpu['sink']))}, baseline {fmt_s(median(cpu['baseline']))}, batch"
                f" {fmt_s(median(cpu['batch']))}; ratio "
                f"{f'{ratio:.2f}x' if ratio else '-'} {errors or ''}"
            )
            results.extra.setdefault("modules", {})[table] = {
                "plays": [p.seconds for p in plays],
                "noops": noops,
                "sinks": sinks,
                "batches": batches,
                "cpu": cpu,
                "peak_kib": max((p.peak_kib for p in plays), default=0),
                "children_peak_kib": max((p.children_peak_kib for p in plays), default=0),
            }
            results.checks.append(
                Check(
                    "p",
                    f"one `{table}` task, {SIZE // 1000}k entries (play - no-op play): rate >= {TARGET}x the "
                    f"{tool} rate",
                    f"{fmt_s(task_s)} vs {fmt_s(batch_s)}",
                    ratio,
                    TARGET,
                    higher_is_better=True,
                )
            )
            time.sleep(0.5)  # the namespaces dropped go in the background; let the next table start cleaner
    finally:
        spaces.cleanup()
