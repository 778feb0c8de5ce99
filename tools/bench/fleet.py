# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""(c) the fleet-wide computation inside ansible-playbook, on generated inventories.

The role computes the fleet in one run_once task on the controller, ``netfleet.overlay.overlay_plan`` (an action
plugin: fleet_records + compute_plan + pack_plan in Python, registered as ``_overlay_plan``); each host expands
its own part later, in apply.yml. tools/bench/playbooks/compute.yml imports the role's compute.yml, that one task.

Every host has ``ansible_connection: local`` (nothing is ever executed on it: the plays run only controller-side
tasks), an ``overlay_vtep`` and 5 ``overlay_endpoints`` with explicit addresses. The networks grow with the
fleet, 100 endpoints each (hosts / 20 networks: 50 at 1000 hosts), so every host's tables hold about 5 x 99
entries at any size and the fleet's tables grow linearly with the hosts.
"""

from __future__ import annotations

import importlib
import ipaddress
import json
import time
from pathlib import Path

from devenv import import_collection

from bench.common import (
    BIN,
    PLAYBOOKS,
    Budget,
    Check,
    Results,
    fmt_s,
    log,
    median,
    playbook_env,
    read_timer,
    run_timed,
)

SIZES = (250, 400, 500, 1000, 2000)
NAIVE_SIZES = (250, 400)
NAIVE_SAMPLE = 30  # the naive loop runs on this many hosts of the N-host inventory (--limit), scaled by N / 30
ENDPOINTS_PER_HOST = 5
HOSTS_PER_NETWORK = 20  # -> 100 endpoints per network
PAIRS = 3  # no-op and compute plays, alternating, where a pair is cheap (the median of each counts)
CHEAP_PAIR = 30.0  # seconds: a pair that took less is repeated, up to PAIRS
NAIVE_REPS = 3  # samples of the naive loop when the budget has room for them (median)
PY_REPS = 3  # runs of the plan in plain Python (median)
EXPAND_SAMPLE = 20  # hosts whose part of the plan is expanded in plain Python (median per host)
MIN_STEP = 20.0  # seconds: a step with less than this left for it is not run
STEP = "Compute the whole fleet's overlay"  # the name of the role's compute task starts with this


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


def _plugin_utils():
    import_collection()
    base = "ansible_collections.netfleet.overlay.plugins.plugin_utils."
    return importlib.import_module(base + "fleet_records"), importlib.import_module(base + "peer_tables")


def plan_alone(inventory: dict) -> dict:
    """What the overlay_plan action runs, in plain Python on the same data (plain dicts, no Ansible, no hostvars).

    fleet_records + compute_plan + pack_plan + plan_summary, each timed (median of PY_REPS runs), the entries of
    every host's neighbour table summed, and one host's expansion of the packed plan (host_tables, what the
    host_tables filter runs per host in apply.yml), the median over EXPAND_SAMPLE hosts.
    """
    records_mod, peer_tables = _plugin_utils()
    hostvars = inventory["all"]["children"]["fleet"]["hosts"]
    networks = inventory["all"]["vars"]["overlay_networks"]
    hosts = list(hostvars)
    parts: dict[str, list[float]] = {"records": [], "plan": [], "pack": [], "summary": [], "total": []}
    for _rep in range(PY_REPS):
        t0 = time.perf_counter()
        records = records_mod.fleet_records(hostvars, hosts, hosts)
        t1 = time.perf_counter()
        plan = peer_tables.compute_plan(networks, records)
        t2 = time.perf_counter()
        packed = peer_tables.pack_plan(plan)
        t3 = time.perf_counter()
        summary = peer_tables.plan_summary(packed)
        t4 = time.perf_counter()
        for key, seconds in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0), strict=True):
            parts[key].append(seconds)
    step = max(1, len(hosts) // EXPAND_SAMPLE)
    sample = hosts[::step][:EXPAND_SAMPLE]
    expand = []
    for host in sample:
        start = time.perf_counter()
        peer_tables.host_tables(packed, host)
        expand.append(time.perf_counter() - start)
    found = {key: median(values) for key, values in parts.items()}
    found.update(entries=summary["neigh"], expand=median(expand))
    return found


def _play(playbook: str, inventory: Path, work: Path, forks: int, *, timeout: float, limit: str | None = None):
    timer = work / f"timer-{playbook}-{inventory.stem}.json"
    timer.unlink(missing_ok=True)
    argv = [str(BIN / "ansible-playbook"), "-i", str(inventory), str(PLAYBOOKS / f"{playbook}.yml")]
    if limit:
        argv += ["--limit", limit]
    run = run_timed(argv, timeout=timeout, env=playbook_env(forks, timer))
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
        "(c) the whole fleet's overlay inside ansible-playbook (5 endpoints per host, 100 per network)",
        [
            "hosts",
            "networks",
            "neigh entries (all hosts)",
            "no-op play",
            "compute.yml play",
            "adds",
            "adds (CPU)",
            "compute step (timer)",
            "plan alone (Python)",
            "one host's expansion (Python)",
            "naive loop adds",
            "peak memory",
            "pairs",
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
        python = plan_alone(inv)
        rows[hosts] = {"networks": len(inv["all"]["vars"]["overlay_networks"]), "python": python}
        log(
            f"  (c) {hosts} hosts: plan alone (Python) {fmt_s(python['total'])}, one host's expansion "
            f"{fmt_s(python['expand'])}"
        )
        for key in ("noop_runs", "compute_runs", "step_runs", "noop_cpu", "compute_cpu"):
            rows[hosts][key] = []
        rows[hosts].update(peak=0, worker_peak=0, timed_out=False)

    def left() -> float:
        return budget.left() - reserve

    def summarize(row: dict) -> None:
        row["noop"] = median(row["noop_runs"])
        row["compute"] = median(row["compute_runs"])
        row["step"] = median(row["step_runs"])
        # each pair's difference: the two plays of a pair ran back to back, under about the same load
        row["adds_runs"] = [c - n for n, c in zip(row["noop_runs"], row["compute_runs"], strict=True)]
        row["adds"] = median(row["adds_runs"])
        row["adds_cpu"] = median(c - n for n, c in zip(row["noop_cpu"], row["compute_cpu"], strict=True))
        row["compute_cpu_median"] = median(row["compute_cpu"])

    def pairs(sizes: tuple[int, ...], timeout: float) -> None:
        """The no-op and the compute play, alternating, round-robin over ``sizes``: one pair of each size, then
        more (up to PAIRS) while a size's pair is cheap and fits ``timeout``."""
        deadline = time.monotonic() + timeout
        stopped: set[int] = set()
        while True:
            todo = [h for h in sizes if h not in stopped and len(rows[h]["compute_runs"]) < PAIRS]
            if not todo:
                break
            for hosts in todo:
                row = rows[hosts]
                here = deadline - time.monotonic()
                if row["compute_runs"]:
                    last = row["noop_runs"][-1] + row["compute_runs"][-1]
                    if last > CHEAP_PAIR or last * 1.2 > here or row["timed_out"]:
                        stopped.add(hosts)
                        continue
                share = here * hosts / sum(h for h in todo if h >= hosts)  # the larger sizes after it get theirs
                noop = _play("noop", inventories[hosts], work, forks, timeout=min(120.0, max(30.0, share)))[0]
                if noop.timed_out:
                    raise RuntimeError(f"the no-op play on {hosts} hosts took longer than {noop.seconds:.0f} s")
                run, tasks = _play("compute", inventories[hosts], work, forks, timeout=max(10.0, share - noop.seconds))
                row["noop_runs"].append(noop.seconds)
                row["compute_runs"].append(run.seconds)
                row["noop_cpu"].append(noop.cpu_seconds)
                row["compute_cpu"].append(run.cpu_seconds)
                step = _task(tasks, STEP)
                if step is not None:
                    row["step_runs"].append(step)
                row["timed_out"] = run.timed_out
                row["peak"] = max(row["peak"], run.peak_kib)
                row["worker_peak"] = max(row["worker_peak"], run.children_peak_kib)
                log(
                    f"  (c) {hosts} hosts: no-op play {fmt_s(noop.seconds)} (CPU {fmt_s(noop.cpu_seconds)}), "
                    f"compute.yml play {fmt_s(run.seconds, lower_bound=run.timed_out)} (CPU "
                    f"{fmt_s(run.cpu_seconds)}; its compute step {fmt_s(step)})"
                )
                summarize(row)
            if all(h in stopped or len(rows[h]["compute_runs"]) >= PAIRS for h in sizes):
                break

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

    def estimate(kind: str, sizes: tuple[int, ...]) -> float:
        """Expected seconds of a step's first round, from what was measured so far."""
        if kind == "naive":
            done = [h for h in NAIVE_SIZES if rows[h].get("naive_samples")]
            if not done:
                return 25.0
            ref = rows[done[0]]  # each host's loop is linear in the hosts: scale the sample by the sizes
            return sum(2 * ref["naive_base"] + median(ref["naive_samples"]) * h / done[0] for h in sizes)
        done = [h for h in SIZES if rows[h]["compute_runs"] and not rows[h]["timed_out"]]
        if not done:
            return 60.0
        ref = max(done)
        return sum((rows[ref]["noop"] + rows[ref]["compute"]) * max(h / ref, 0.5) for h in sizes)

    # Most important first: the sizes the targets name, 1000 and 2000 round-robin (their ratio is a target, so
    # a change of the machine's load must hit both alike), then 400 and its naive loop, then the other points
    # of the plot while the budget lasts. A target's step only has to leave MIN_STEP seconds to each target
    # step after it; a plot-only step runs only when its estimate fits what is left.
    small, mid, big, large = SIZES[0], SIZES[2], SIZES[3], SIZES[4]  # 250, 500, 1000, 2000
    plan = [
        ("pairs", (big, large), True),
        ("pairs", (NAIVE_SIZES[1],), True),
        ("naive", (NAIVE_SIZES[1],), True),
        ("pairs", (small,), False),
        ("naive", (NAIVE_SIZES[0],), False),
        ("pairs", (mid,), False),
    ]
    for index, (kind, sizes, needed) in enumerate(plan):
        later = sum(MIN_STEP for k, h, n in plan[index + 1 :] if n)
        timeout = left() - later
        if timeout < MIN_STEP or (not needed and estimate(kind, sizes) * 1.1 > timeout):
            log(f"  (c) {'/'.join(map(str, sizes))} hosts: {kind} not run: {max(timeout, 0):.0f} s of the budget left")
            for hosts in sizes:
                rows[hosts].setdefault("skipped", []).append(kind)
            continue
        if kind == "pairs":
            pairs(sizes, timeout)
        else:
            naive(sizes[0], timeout)

    # what is left of the budget: more samples of the naive loop (single runs are at the mercy of the machine)
    extra = [hosts for rep in range(NAIVE_REPS - 1) for hosts in reversed(NAIVE_SIZES)]
    for hosts in extra:
        row = rows[hosts]
        if row.get("naive_samples") and not row["naive_timed_out"] and left() > row["naive_samples"][-1] * 1.3:
            naive(hosts, left())

    for hosts in SIZES:
        row = rows[hosts]
        python = row["python"]
        lb = row["timed_out"]
        ran = bool(row["compute_runs"])
        sec["rows"].append(
            [
                str(hosts),
                str(row["networks"]),
                f"{python['entries']:,}",
                fmt_s(row.get("noop")),
                fmt_s(row.get("compute"), lower_bound=lb) if ran else "not run (budget)",
                fmt_s(row.get("adds"), lower_bound=lb),
                fmt_s(row.get("adds_cpu")),
                fmt_s(row.get("step")),
                fmt_s(python["total"]),
                fmt_s(python["expand"]),
                (
                    fmt_s(row["naive_adds"], lower_bound=row["naive_timed_out"])
                    + f" (est. from {NAIVE_SAMPLE} hosts, median of {len(row['naive_samples'])})"
                    if "naive_adds" in row
                    else "not run (budget)"
                    if "naive" in row.get("skipped", [])
                    else "-"
                ),
                _memory(row),
                str(len(row["compute_runs"])),
            ]
        )
        plot.setdefault("no-op play", []).append((hosts, row.get("noop")))
        plot.setdefault("compute.yml play", []).append((hosts, row.get("compute")))
        plot.setdefault("compute step (timer)", []).append((hosts, row.get("step")))
        plot.setdefault("plan alone (Python)", []).append((hosts, python["total"]))
        if "naive_adds" in row and row.get("noop"):
            plot.setdefault("naive loop (no-op + est. added)", []).append((hosts, row["noop"] + row["naive_adds"]))
    skipped = [f"{h} ({', '.join(rows[h]['skipped'])})" for h in SIZES if rows[h].get("skipped")]
    if skipped:
        sec["notes"].append(
            f"not run (budget): {'; '.join(skipped)}. The sizes the targets name (1000, 2000, and 400 with its naive "
            "loop) run first and the others only while the 10-minute budget lasts."
        )
    sec["notes"].append(
        "no-op play = tools/bench/playbooks/noop.yml: the same inventory and a play over the same hosts with no task "
        "(ansible-playbook's start, the inventory, the play): the floor of any play. compute.yml play = the same "
        "play with the role's compute step, its one run_once task `netfleet.overlay.overlay_plan`. The two "
        f"alternate (no-op, compute, no-op, ...), up to {PAIRS} pairs where a pair takes under {CHEAP_PAIR:.0f} s "
        "(pairs column); each figure is the median of its runs, wall clock of the whole ansible-playbook process."
    )
    sec["notes"].append(
        "adds = compute.yml play - the no-op play run just before it, the median over the pairs. It is the "
        "difference of two noisy wall clocks, so on a loaded machine it can come out near zero or even negative. "
        "adds (CPU) = the same difference in CPU time (user + system of ansible-playbook and of the workers it "
        "reaped, from wait4), which the other processes on the machine move far less than wall time; it is "
        "shown for information, the target is on wall time. compute step (timer) = that one task timed inside "
        "the run by tools/bench/callback/bench_timer.py, from its start to the end of the play: the worker's fork, the "
        "templated arguments, the read of every host's variables, the plan and the result registered on every "
        "host (median of the runs). 1000 and 2000 hosts run round-robin (no-op 1000, compute 1000, no-op 2000, "
        "compute 2000, ...), so a change of the machine's load hits both sizes alike."
    )
    sec["notes"].append(
        "plan alone (Python) = what the action plugin runs, on the same data as plain dicts (no Ansible, no "
        "hostvars): `fleet_records` + `compute_plan` + `pack_plan` + `plan_summary` of "
        f"plugins/plugin_utils (median of {PY_REPS}). one host's expansion = `host_tables` of one host on the "
        f"packed plan, what the `host_tables` filter does per host in the role's apply.yml (not part of "
        f"compute.yml), the median over {EXPAND_SAMPLE} hosts. neigh entries = every host's neighbour table "
        "summed (the FDB tables hold as many)."
    )
    sec["notes"].append(
        f"naive loop adds: the Jinja hostvars loop of tools/bench/playbooks/naive.yml run on the first {NAIVE_SAMPLE} "
        f"hosts (--limit) of the N-host inventory, minus the no-op play on the same hosts, times N/{NAIVE_SAMPLE}. "
        "Each host's template walks all N hosts' hostvars whatever the limit, so its per-host work is the full "
        "run's; the sample keeps the quadratic loop inside the time budget."
    )
    sec["notes"].append(
        "peak memory: VmHWM of the ansible-playbook process (the controller) and of the largest worker process "
        "it forked (the one that runs the action plugin), polled every 50 ms from /proc, the largest over the "
        "compute.yml runs; a run cut by its time limit shows its peak so far."
    )

    r1000, r2000, r400 = rows[big], rows[large], rows[NAIVE_SIZES[1]]

    def measured(row: dict) -> str:
        if not row["compute_runs"]:
            return "not run"
        return (
            f"adds {fmt_s(row['adds'], lower_bound=row['timed_out'])} (median of the pairs' "
            f"{', '.join(fmt_s(x) for x in row['adds_runs'])}; in CPU time {fmt_s(row['adds_cpu'])}; the step "
            f"itself {fmt_s(row['step'])})"
        )

    results.checks.append(
        Check(
            "c",
            "1000 hosts: the compute step adds <= 1 s over the no-op play",
            measured(r1000),
            r1000.get("adds"),
            1.0,
            lower_bound=r1000["timed_out"],
            unit="s",
            note=str(big),
        )
    )
    scale = r2000["compute"] / r1000["compute"] if r2000.get("compute") and r1000.get("compute") else None
    cpu = r1000.get("compute_cpu_median")
    cpu_scale = (
        f"; in CPU time {r2000['compute_cpu_median'] / cpu:.2f}x" if cpu and r2000.get("compute_cpu_median") else ""
    )
    results.checks.append(
        Check(
            "c",
            "2000 hosts: compute.yml play <= 2.2x the 1000-host play",
            f"{fmt_s(r2000.get('compute'), lower_bound=r2000['timed_out'])} vs {fmt_s(r1000.get('compute'))} "
            f"(medians of {len(r2000['compute_runs'])} and {len(r1000['compute_runs'])}{cpu_scale})",
            scale,
            2.2,
            lower_bound=r2000["timed_out"],
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
    # adds can be near zero or negative (two noisy wall clocks): the step's own time is a floor for it
    added = [x for x in (r400.get("adds"), r400.get("step")) if x is not None]
    denominator = max(added) if added else None
    speedup = r400["naive_adds"] / denominator if denominator and denominator > 0 and r400.get("naive_adds") else None
    results.checks.append(
        Check(
            "c",
            "400 hosts: the compute step >= 100x faster than the naive hostvars loop (added time)",
            f"{fmt_s(denominator)} vs {fmt_s(r400.get('naive_adds'))} (est.); the step's added time is the larger "
            f"of adds ({fmt_s(r400.get('adds'))}) and the step's own time ({fmt_s(r400.get('step'))})",
            speedup,
            100.0,
            higher_is_better=True,
            lower_bound=r400.get("naive_timed_out", False),
            note=str(NAIVE_SIZES[1]),
        )
    )
    sec["notes"].append(
        "the 100x ratio divides the naive loop's added time by the larger of adds and the compute step's own "
        "time (bench_timer): adds alone can be near zero or negative on a loaded machine, which would make the "
        "ratio meaningless; the step's own time is what the task costs inside the run."
    )
    results.extra["fleet"] = rows
