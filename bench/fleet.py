# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""(c) the fleet-wide peer-table computation inside ansible-playbook, on generated inventories.

Every host has ``ansible_connection: local`` (nothing is ever executed on it: the plays run only
``set_fact`` and ``meta``), an ``overlay_vtep`` and 5 ``overlay_endpoints`` with explicit addresses. The
networks grow with the fleet, 100 endpoints each (hosts / 20 networks: 50 at 1000 hosts), so every host's
tables hold about 5 x 99 entries at any size and the output grows linearly with the hosts.
"""

from __future__ import annotations

import importlib
import ipaddress
import json
import sys
import time
from pathlib import Path

from bench.common import (
    BIN,
    COLLECTIONS,
    PLAYBOOKS,
    Budget,
    Check,
    Results,
    ansible_env,
    fmt_s,
    log,
    median,
    read_timer,
    run_timed,
)

SIZES = (250, 400, 500, 1000, 2000)
NAIVE_SIZES = (250, 400)
NAIVE_SAMPLE = 30  # the naive loop runs on this many hosts of the N-host inventory (--limit), scaled by N / 30
ENDPOINTS_PER_HOST = 5
HOSTS_PER_NETWORK = 20  # -> 100 endpoints per network
NOOP_REPS = 3
CHEAP = 2.0  # seconds: a no-op play faster than this is repeated NOOP_REPS times (median)
NAIVE_REPS = 3  # samples of the naive loop when the budget has room for them (median)
MIN_STEP = 20.0  # seconds: a step with less than this left for it is not run


def vtep(k: int) -> str:
    return f"198.18.{1 + (k - 1) // 254}.{1 + (k - 1) % 254}"


def generate(hosts: int) -> dict:
    """The inventory (as a dict; JSON is YAML) of ``hosts`` hosts with 5 endpoints each."""
    count = max(ENDPOINTS_PER_HOST, hosts // HOSTS_PER_NETWORK)
    networks = [
        {"name": f"net{j:03d}", "vni": 5000 + j, "subnet": f"10.{100 + j // 256}.{j % 256}.0/24"} for j in range(count)
    ]
    used = [0] * count
    records = {}
    for i in range(hosts):
        endpoints = []
        for e in range(ENDPOINTS_PER_HOST):
            j = (i * ENDPOINTS_PER_HOST + e) % count  # 5 consecutive networks: all different
            used[j] += 1
            address = ipaddress.ip_network(networks[j]["subnet"]).network_address + 1 + used[j]  # .1 is the gateway
            endpoints.append({"name": f"ep{e}", "network": networks[j]["name"], "address": str(address)})
        records[f"b{i + 1:04d}"] = {"overlay_vtep": vtep(i + 1), "overlay_endpoints": endpoints}
    return {
        "all": {
            "vars": {"overlay_networks": networks},
            "children": {"fleet": {"vars": {"ansible_connection": "local"}, "hosts": records}},
        }
    }


def filter_alone(inventory: dict) -> tuple[float, int]:
    """The two filters in plain Python on the same data (no Ansible): seconds and entries per table."""
    if str(COLLECTIONS) not in sys.path:
        sys.path.insert(0, str(COLLECTIONS))
    base = "ansible_collections.netfleet.overlay.plugins.plugin_utils."
    fleet_records = importlib.import_module(base + "fleet_records").fleet_records
    peer_tables = importlib.import_module(base + "peer_tables")
    hostvars = inventory["all"]["children"]["fleet"]["hosts"]
    networks = inventory["all"]["vars"]["overlay_networks"]
    start = time.perf_counter()
    result = peer_tables.compute_peer_tables(networks, fleet_records(hostvars, list(hostvars), list(hostvars)))
    seconds = time.perf_counter() - start
    return seconds, peer_tables.summarize(result)["neigh"]


def _play(playbook: str, inventory: Path, work: Path, forks: int, *, timeout: float, limit: str | None = None):
    timer = work / f"timer-{playbook}-{inventory.stem}.json"
    timer.unlink(missing_ok=True)
    argv = [str(BIN / "ansible-playbook"), "-i", str(inventory), str(PLAYBOOKS / f"{playbook}.yml")]
    if limit:
        argv += ["--limit", limit]
    run = run_timed(argv, timeout=timeout, env=ansible_env(forks, timer))
    if run.returncode not in (0, None):
        tail = (run.stdout + run.stderr).strip().splitlines()[-15:]
        raise RuntimeError(f"ansible-playbook {playbook}.yml on {inventory.name} failed:\n" + "\n".join(tail))
    return run, read_timer(timer)


def _memory(row: dict) -> str:
    if not row.get("peak"):
        return "-"
    sign = ">= " if row.get("timed_out") else ""
    return f"{sign}{row['peak'] / 1024:.0f} MiB (worker {row['worker_peak'] / 1024:.0f} MiB)"


def _task(tasks: list[dict], words: str) -> float | None:
    found = [t["seconds"] for t in tasks if words.lower() in t["name"].lower()]
    return found[0] if found else None


def run(results: Results, budget: Budget, work: Path, forks: int, reserve: float) -> None:
    """Measure (c); keep ``reserve`` seconds of the budget for what runs after it."""
    sec = results.section(
        "c",
        "(c) peer tables for the whole fleet inside ansible-playbook (5 endpoints per host, 100 per network)",
        [
            "hosts",
            "networks",
            "entries/table",
            "no-op play",
            "compute.yml play",
            "adds",
            "of which publish",
            "of which compute",
            "filter alone (Python)",
            "naive loop adds",
            "peak memory",
        ],
    )
    plot = results.plot.setdefault("hosts", {})
    rows: dict[int, dict] = {}
    inventories: dict[int, Path] = {}
    for hosts in SIZES:
        inv = generate(hosts)
        path = work / f"fleet-{hosts}.json"
        path.write_text(json.dumps(inv), encoding="utf-8")
        inventories[hosts] = path
        seconds, per_table = filter_alone(inv)
        rows[hosts] = {
            "networks": len(inv["all"]["vars"]["overlay_networks"]),
            "entries": per_table,
            "filter": seconds,
        }

    # the no-op plays first: three each where a run is cheap (under CHEAP seconds), else one
    for hosts in SIZES:
        runs = [_play("noop", inventories[hosts], work, forks, timeout=120)[0].seconds]
        while len(runs) < NOOP_REPS and runs[0] < CHEAP:
            runs.append(_play("noop", inventories[hosts], work, forks, timeout=120)[0].seconds)
        rows[hosts]["noop"] = median(runs)
        rows[hosts]["noop_runs"] = len(runs)
        log(f"  (c) {hosts} hosts: no-op play {fmt_s(rows[hosts]['noop'])} (median of {len(runs)})")

    def left() -> float:
        return budget.left() - reserve

    def compute(hosts: int, timeout: float) -> None:
        run, tasks = _play("compute", inventories[hosts], work, forks, timeout=timeout)
        row = rows[hosts]
        row.update(
            compute=run.seconds,
            timed_out=run.timed_out,
            peak=run.peak_kib,
            worker_peak=run.children_peak_kib,
            publish=_task(tasks, "publish"),
            step=_task(tasks, "compute every host"),
        )
        row["adds"] = run.seconds - row["noop"]
        log(f"  (c) {hosts} hosts: compute.yml play {fmt_s(run.seconds, lower_bound=run.timed_out)}")

    def naive(hosts: int, timeout: float) -> None:
        """The naive loop on a sample of hosts (again: one more sample, the median counts)."""
        row = rows[hosts]
        sample = f"all[0:{NAIVE_SAMPLE - 1}]"
        if "naive_base" not in row:
            noop = [_play("noop", inventories[hosts], work, forks, timeout=120, limit=sample)[0] for rep in range(2)]
            row["naive_base"] = median(r.seconds for r in noop)
            timeout -= 2 * row["naive_base"]
        run = _play("naive", inventories[hosts], work, forks, timeout=max(10.0, timeout), limit=sample)[0]
        row.setdefault("naive_samples", []).append(run.seconds)
        row["naive_timed_out"] = row.get("naive_timed_out", False) or run.timed_out
        row["naive_adds"] = (median(row["naive_samples"]) - row["naive_base"]) * hosts / NAIVE_SAMPLE
        log(
            f"  (c) {hosts} hosts: naive loop on {NAIVE_SAMPLE} hosts {fmt_s(run.seconds, lower_bound=run.timed_out)}"
            f" (no-op {fmt_s(row['naive_base'])}) -> adds {fmt_s(row['naive_adds'])} for {hosts} hosts"
            f" (median of {len(row['naive_samples'])})"
        )

    def estimate(kind: str, hosts: int) -> float:
        """Expected seconds of a step, from the largest compute play measured so far (entries scale it)."""
        if kind == "naive":
            done = [h for h in NAIVE_SIZES if rows[h].get("naive_samples")]
            if not done:
                return 25.0
            ref = rows[done[0]]  # each host's loop is linear in the hosts: scale the sample by the sizes
            return 2 * ref["naive_base"] + median(ref["naive_samples"]) * hosts / done[0]
        done = [h for h in SIZES if rows[h].get("compute") and not rows[h].get("timed_out")]
        if not done:
            return 60.0
        ref = rows[max(done)]
        return rows[hosts]["noop"] + ref["adds"] * rows[hosts]["entries"] / ref["entries"]

    # Most important first: the sizes the targets name (1000, 400 and its naive loop, 2000), then the other
    # points of the plot while the budget lasts. A target's step only has to leave MIN_STEP seconds to each
    # target step after it; a plot-only step runs only when its estimate fits what is left.
    small, mid, big, large = SIZES[0], SIZES[2], SIZES[3], SIZES[4]  # 250, 500, 1000, 2000
    plan = [
        ("compute", big, True),
        ("compute", NAIVE_SIZES[1], True),
        ("naive", NAIVE_SIZES[1], True),
        ("compute", large, True),
        ("compute", small, False),
        ("naive", NAIVE_SIZES[0], False),
        ("compute", mid, False),
    ]
    for index, (kind, hosts, needed) in enumerate(plan):
        later = sum(MIN_STEP for k, h, n in plan[index + 1 :] if n)
        timeout = left() - later
        if kind == "compute" and hosts == big:
            timeout = min(timeout, left() * 0.35)  # 2000 hosts takes about twice as long
        if timeout < MIN_STEP or (not needed and estimate(kind, hosts) * 1.1 > timeout):
            log(f"  (c) {hosts} hosts: {kind} not run: {max(timeout, 0):.0f} s of the budget left for it")
            rows[hosts].setdefault("skipped", []).append(kind)
            continue
        (compute if kind == "compute" else naive)(hosts, timeout)

    # what is left of the budget: more samples of the naive loop (single runs are at the mercy of the machine)
    extra = [hosts for rep in range(NAIVE_REPS - 1) for hosts in reversed(NAIVE_SIZES)]
    for hosts in extra:
        row = rows[hosts]
        if row.get("naive_samples") and not row["naive_timed_out"] and left() > row["naive_samples"][-1] * 1.3:
            naive(hosts, left())

    for hosts in SIZES:
        row = rows[hosts]
        lb = row.get("timed_out", False)
        sec["rows"].append(
            [
                str(hosts),
                str(row["networks"]),
                f"{row['entries']:,}",
                fmt_s(row["noop"]),
                "not run (budget)"
                if "compute" in row.get("skipped", [])
                else fmt_s(row.get("compute"), lower_bound=lb),
                fmt_s(row.get("adds"), lower_bound=lb),
                fmt_s(row.get("publish")),
                fmt_s(row.get("step")),
                fmt_s(row["filter"]),
                (
                    fmt_s(row["naive_adds"], lower_bound=row["naive_timed_out"])
                    + f" (est. from {NAIVE_SAMPLE} hosts, median of {len(row['naive_samples'])})"
                    if "naive_adds" in row
                    else "not run (budget)"
                    if "naive" in row.get("skipped", [])
                    else "-"
                ),
                _memory(row),
            ]
        )
        plot.setdefault("no-op play", []).append((hosts, row["noop"]))
        plot.setdefault("compute.yml play", []).append((hosts, row.get("compute")))
        plot.setdefault("filter alone (Python)", []).append((hosts, row["filter"]))
        if "naive_adds" in row:
            plot.setdefault("naive loop (no-op + est. added)", []).append((hosts, row["noop"] + row["naive_adds"]))
    skipped = [f"{h} ({', '.join(rows[h]['skipped'])})" for h in SIZES if rows[h].get("skipped")]
    if skipped:
        sec["notes"].append(
            f"not run (budget): {'; '.join(skipped)}. The sizes the targets name (1000, 2000, and 400 with its naive "
            "loop) run first and the others only while the 10-minute budget lasts; here the 2000-host play "
            f"alone took {fmt_s(rows[large].get('compute'))}."
        )
    sec["notes"].append(
        "adds = compute.yml play - no-op play (wall clock of the whole ansible-playbook run, from the shell); "
        "publish / compute = the two tasks of compute.yml, timed inside the run by bench/callback/bench_timer.py "
        "(the per-host `_overlay_state` set_fact and the run_once peer_tables set_fact)."
    )
    sec["notes"].append(
        f"naive loop adds: the Jinja hostvars loop of bench/playbooks/naive.yml run on the first {NAIVE_SAMPLE} "
        f"hosts (--limit) of the N-host inventory, minus a no-op play on the same hosts, times N/{NAIVE_SAMPLE}. "
        "Each host's template walks all N hosts' hostvars whatever the limit, so its per-host work is the full "
        "run's; the sample keeps the quadratic loop inside the time budget."
    )
    sec["notes"].append(
        "peak memory: VmHWM of the ansible-playbook process (the controller, which ends up holding the result "
        "and every host's copy of the fact), and of the largest worker process it forked (the one that "
        "templates the result), polled every 50 ms from /proc; a run cut by its time limit shows its peak so far."
    )

    r1000, r2000 = rows[big], rows[large]
    adds = r1000.get("adds")
    results.checks.append(
        Check(
            "c",
            "1000 hosts: the compute step adds <= 1 s over the no-op play",
            f"adds {fmt_s(adds, lower_bound=r1000.get('timed_out', False))}",
            adds,
            1.0,
            lower_bound=r1000.get("timed_out", False),
            unit="s",
            note=str(big),
        )
    )
    scale = r2000["compute"] / r1000["compute"] if r2000.get("compute") and r1000.get("compute") else None
    results.checks.append(
        Check(
            "c",
            "2000 hosts: compute.yml play <= 2.2x the 1000-host play",
            f"{fmt_s(r2000.get('compute'), lower_bound=r2000.get('timed_out', False))} vs "
            f"{fmt_s(r1000.get('compute'))}",
            scale,
            2.2,
            lower_bound=r2000.get("timed_out", False),
            note=str(large),
        )
    )
    results.checks.append(
        Check(
            "c",
            f"peak controller memory at {large} hosts (no target)",
            _memory(r2000),
            None,
            None,
        )
    )
    r400 = rows[NAIVE_SIZES[1]]
    speedup = r400["naive_adds"] / r400["adds"] if r400.get("adds") and r400.get("naive_adds") else None
    results.checks.append(
        Check(
            "c",
            "400 hosts: the compute step >= 100x faster than the naive hostvars loop (added time)",
            f"{fmt_s(r400.get('adds'))} vs {fmt_s(r400.get('naive_adds'))} (est.)",
            speedup,
            100.0,
            higher_is_better=True,
            lower_bound=r400.get("naive_timed_out", False),
            note=str(NAIVE_SIZES[1]),
        )
    )
    results.extra["fleet"] = rows
