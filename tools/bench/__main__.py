# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""make bench: run every benchmark within the budget, print the tables, write docs/performance.md and the plot.

Order: (a)/(b) the table engine, (p) the public table modules through ansible-playbook, (d)/(e) the 30-host lab
(which also picks the forks), (m) moves on a 3-host lab, then (c) the fleet computation, whose largest size gets
what is left of the budget.

``python -m bench --only tables`` (or ``BENCH_ONLY=tables``; ``tables``, ``modules``, ``lab``, ``moves``,
``fleet``, comma-separated) runs just those and prints their tables; docs/performance.md and its plot are only
written by a run of all of them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench import fleet, lab, modules, moves, report, tables, wireguard
from bench.common import Budget, Results, log, machine_facts, require_root

BUDGET = float(os.environ.get("BENCH_BUDGET", "570"))  # seconds; make bench must finish within 10 minutes
TABLES_SHARE = 90.0
# (p): at least one run of each play and batch, more when they are cheap
MODULES_SHARE = float(os.environ.get("BENCH_MODULES_SHARE", "60"))
LAB_SHARE = 0.4  # of what is left after (a)/(b)
FLEET_RESERVE = 15.0  # kept for the report and the plot
DEFAULT_FORKS = 2


MAIN_PID = os.getpid()
PARTS = ("tables", "modules", "lab", "moves", "wireguard", "fleet")


def _parts(argv: list[str]) -> set[str]:
    """The benchmarks to run: ``--only`` / ``BENCH_ONLY`` (comma-separated), else all of them."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=os.environ.get("BENCH_ONLY", ""), help=f"any of {', '.join(PARTS)}")
    only = {part.strip() for part in parser.parse_args(argv).only.split(",") if part.strip()}
    unknown = only - set(PARTS)
    if unknown:
        parser.error(f"--only: unknown {', '.join(sorted(unknown))} (choose from {', '.join(PARTS)})")
    return only or set(PARTS)


def _stop(signum, frame):
    if os.getpid() != MAIN_PID:
        # a child forked from this process (pyroute2 forks one per namespace it opens, and may end it with
        # SIGTERM) inherits this handler: it must die quietly, never unwind this process's cleanups
        os._exit(128 + signum)
    raise SystemExit(f"stopped by signal {signum}")  # unwinds through every cleanup


def _section(results: Results, name: str, what: str, call):
    log(f"\n== {what}")
    try:
        return call()
    except Exception as exc:  # one broken benchmark must not hide the others
        log(traceback.format_exc())
        results.sections.setdefault(name, {"title": what, "columns": ["error"], "rows": [], "notes": []})
        results.sections[name]["notes"].append(f"failed: {type(exc).__name__}: {str(exc)[:600]}")
        return None


def main(argv: list[str] | None = None) -> int:
    parts = _parts(sys.argv[1:] if argv is None else argv)
    require_root()
    signal.signal(signal.SIGTERM, _stop)
    budget = Budget(BUDGET)
    results = Results(started=time.strftime("%Y-%m-%d %H:%M %Z"), machine=machine_facts())
    work = Path(tempfile.mkdtemp(prefix="nfbench-"))
    log(f"make bench: budget {BUDGET:.0f} s, work directory {work}")
    try:
        if "tables" in parts:
            _section(
                results,
                "a",
                "(a)/(b) the table engine vs iproute2",
                lambda: tables.run(results, budget, min(TABLES_SHARE, budget.left())),
            )
        if "modules" in parts:
            _section(
                results,
                "p",
                "(p) the public table modules through ansible-playbook",
                lambda: modules.run(results, budget, work / "modules", min(MODULES_SHARE, budget.left())),
            )
        forks = None
        if "lab" in parts:
            forks = _section(
                results,
                "de",
                "(d)/(e) site.yml on a 30-host lab",
                lambda: lab.run(results, budget, work, LAB_SHARE * budget.left()),
            )
        if forks is None:
            forks = results.forks = DEFAULT_FORKS
            results.forks_note = "the lab failed, so forks were not compared"
            if "lab" not in parts:
                results.forks_note = "the lab did not run (--only), so forks were not compared"
        if "moves" in parts:
            _section(
                results,
                "m",
                "(m) moves on a 3-host lab",
                lambda: moves.run(results, budget, work, forks),
            )
        if "wireguard" in parts:
            _section(
                results,
                "w",
                "(w) TCP throughput with and without encryption on a 2-host lab",
                lambda: wireguard.run(results, budget, work, forks),
            )
        if "fleet" in parts:
            _section(
                results,
                "c",
                "(c) the peer tables inside ansible-playbook",
                lambda: fleet.run(results, budget, work, forks, FLEET_RESERVE),
            )
    finally:
        if os.getpid() != MAIN_PID:
            os._exit(1)  # a forked child must never clean up what the main process owns
        left = [lab_dir for lab_dir in (work / "lab", work / "moves-lab", work / "wg-lab") if lab_dir.exists()]
        if not left:  # netfleet-lab down removed them: nothing of the labs is left
            shutil.rmtree(work, ignore_errors=True)
        for lab_dir in left:
            log(f"WARNING: {lab_dir} is still there: run tools/netfleet-lab down --dir {lab_dir}")
    results.total_seconds = budget.elapsed()
    results.machine["load average (end)"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    report.explain(results)
    report.print_console(results)
    if parts != set(PARTS):
        log(f"\n--only {','.join(p for p in PARTS if p in parts)}: docs/performance.md and its plot left as they were")
        log(f"took {results.total_seconds:.0f} s")
        return 0
    doc = report.write_markdown(results)
    png = report.plot(results)
    log(f"\nwrote {doc.relative_to(report.REPO)} and {png.relative_to(report.REPO)}")
    log(f"make bench took {results.total_seconds:.0f} s (budget {BUDGET:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
