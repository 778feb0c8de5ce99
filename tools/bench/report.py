# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The results as console tables, docs/performance.md and the scaling plot."""

from __future__ import annotations

from pathlib import Path

from devenv import REPO

from bench.common import Results, fmt_s, median

DOC = REPO / "docs" / "performance.md"
PNG = REPO / "docs" / "performance.png"


# --- tables ---------------------------------------------------------------------------------------------------


def text_table(columns: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)), *(len(str(r[i])) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def md_table(columns: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for c in columns) + "|"]
    out += ["| " + " | ".join(str(v).replace("|", "\\|") for v in r) + " |" for r in rows]
    return "\n".join(out)


CHECK_COLUMNS = ["bench", "target", "measured", "ratio / value", "verdict"]
ORDER = ("a", "b", "p", "c", "de", "m")


def sections(results: Results) -> list[dict]:
    return [results.sections[k] for k in sorted(results.sections, key=lambda k: ORDER.index(k) if k in ORDER else 9)]


def check_rows(results: Results) -> list[list[str]]:
    return [[c.bench, c.target, c.measured, c.ratio_text(), c.verdict] for c in results.checks]


def print_console(results: Results) -> None:
    for sec in sections(results):
        print(f"\n{sec['title']}")
        print(text_table(sec["columns"], sec["rows"]))
        for note in sec["notes"]:
            print(f"  note: {note}")
    print("\nTargets")
    print(text_table(CHECK_COLUMNS, check_rows(results)))


# --- why a target was missed ---------------------------------------------------------------------------------


def explain(results: Results) -> None:
    """Fill in ``why`` for every missed target, from what this run measured."""
    fleet = results.extra.get("fleet") or {}
    for check in results.checks:
        if check.verdict not in ("MISSED", "NOT MEASURED", "NOT DECIDED") or check.limit is None:
            continue
        if check.verdict == "NOT MEASURED":
            check.why = "No figure: the run failed or ran out of its time budget (see the notes of the section)."
            continue
        if check.bench in ("a", "b"):
            check.why = _why_table(check)
        elif check.bench == "c":
            check.why = _why_fleet(fleet, check)
        elif check.bench == "d":
            check.why = _why_lab(results)
        elif check.bench == "p":
            check.why = _why_modules(results, check)


def _why_modules(results: Results, check) -> str:
    """(p): how much of the task is Ansible carrying the entries (the bench_sink play) and how much the module."""
    table = "fdb" if "`fdb`" in check.target else "neigh"
    row = (results.extra.get("modules") or {}).get(table) or {}
    play, noop, sink, batch = (median(row.get(k) or []) for k in ("plays", "noops", "sinks", "batches"))
    if None in (play, noop, sink, batch):
        return "Not enough runs to split the task's time (see the notes of (p))."
    task, carry = play - noop, sink - noop
    floor = f"{batch / carry:.2f}x" if carry > 0 else "-"
    return (
        f"Of the task's {fmt_s(task)}, {fmt_s(carry)} is what Ansible itself costs to carry the {table} entries "
        f"into a module that does nothing with them (bench_sink: templating the variable, whose every string may "
        f"be a template, JSON both ways, AnsibleModule's argument checks and copies); that alone is a rate of "
        f"{floor} the iproute2 batch rate, the ceiling of any module that takes its entries as a list of dicts "
        f"through a task argument. The module's own part (validate, read, plan, write, the result) is the rest, "
        f"{fmt_s(task - carry)}, against {fmt_s(batch)} for iproute2's batch."
    )


def _why_table(check) -> str:
    profile = check.note  # tables.py profiles one extra run of a missed target
    lines = []
    if check.bench == "a":
        lines.append(
            "iproute2 reads the batch file and sends the requests from C in one process; the engine is Python "
            "that plans (by key, with before/after lists and one command line per change for the module "
            "result), encodes and writes. The profile shows which part dominates in this run."
        )
    else:
        lines.append(
            "A no-change run reads the table and plans (nothing to write); iproute2 only dumps and prints. The "
            "engine parses every entry in Python, builds the before/after lists and compares them."
        )
    if profile:
        lines.append("Where the engine's time went (cProfile of one extra run, own time):\n\n" + profile)
    return "\n\n".join(lines)


def _runs(values) -> str:
    """The single runs behind a median, for the reader to see the spread."""
    return ", ".join(fmt_s(v) for v in values or [])


def fleet_profile(fleet: dict) -> tuple[list[str], list[list[str]]]:
    """Where the compute step's time went, per fleet size, from this run's figures only: the task's own time
    (bench_timer) against the same plan computed in plain Python, part by part."""
    columns = [
        "hosts",
        "compute step (timer)",
        "plan alone (Python)",
        "fleet_records",
        "compute_plan",
        "pack_plan",
        "plan_summary",
        "step - plan alone",
    ]
    rows = []
    for hosts in sorted(fleet):
        r = fleet[hosts]
        py = r.get("python") or {}
        if not py:
            continue
        step = r.get("step")
        rows.append(
            [
                str(hosts),
                fmt_s(step),
                fmt_s(py.get("total")),
                fmt_s(py.get("records")),
                fmt_s(py.get("plan")),
                fmt_s(py.get("pack")),
                fmt_s(py.get("summary")),
                fmt_s(step - py["total"]) if step is not None else "-",
            ]
        )
    return columns, rows


FLEET_PROFILE = (
    "The role's compute step is one run_once task, `netfleet.overlay.overlay_plan`, an action plugin that runs "
    "`fleet_records`, `compute_plan`, `pack_plan` and `plan_summary` (plugins/plugin_utils) on the controller. "
    "The table sets the task's own time inside ansible-playbook (bench_timer) against the same four calls in "
    "plain Python on the same data (median of three, each part timed). The last column is what Ansible adds "
    "around them (the worker, the task's templated arguments, reading every host's variables through "
    "`hostvars`, returning the result and registering it on every host); this run did not time those parts "
    "separately."
)


def _why_fleet(fleet: dict, check) -> str:
    hosts = int(check.note)  # fleet.py notes the fleet size the target is about
    r = fleet.get(hosts, {})
    py = r.get("python") or {}
    parts = []
    if r.get("timed_out"):
        parts.append(
            f"The {hosts}-host compute.yml play was cut at its time limit ({fmt_s(r.get('compute'))}); the plan "
            f"alone takes {fmt_s(py.get('total'))} in plain Python on the same data."
        )
    elif r.get("compute_runs") and "100x" not in check.target:
        parts.append(
            f"At {hosts} hosts the compute.yml play took {_runs(r['compute_runs'])} (median "
            f"{fmt_s(r['compute'])}) and the no-op play {_runs(r['noop_runs'])} (median {fmt_s(r['noop'])}), "
            f"alternating; each pair's difference: {_runs(r.get('adds_runs'))}. The compute step itself took "
            f"{_runs(r['step_runs'])} inside the run (bench_timer), of which the plan in plain Python is "
            f"{fmt_s(py.get('total'))}. In CPU time (ansible-playbook and its workers, which the machine's other "
            f"load moves far less) the compute.yml play took {_runs(r.get('compute_cpu'))} and the no-op play "
            f"{_runs(r.get('noop_cpu'))}: it adds {fmt_s(r.get('adds_cpu'))}."
        )
        if check.target.startswith(f"{hosts} hosts: the compute step adds"):
            spread = max(r["noop_runs"]) - min(r["noop_runs"]) if len(r["noop_runs"]) > 1 else None
            if spread is not None:
                parts.append(
                    f"The no-op play alone varied by {fmt_s(spread)} between its runs in this run, so a difference "
                    "of two such wall clocks is only as good as that spread."
                )
    small = fleet.get(hosts // 2, {})
    if check.target.startswith(f"{hosts} hosts: compute.yml play") and small.get("compute") and r.get("compute"):
        lines = [
            ("compute.yml play", small["compute"], r["compute"]),
            ("compute.yml play, CPU time", small.get("compute_cpu_median"), r.get("compute_cpu_median")),
            ("no-op play", small.get("noop"), r.get("noop")),
            ("compute step (timer)", small.get("step"), r.get("step")),
            ("plan alone (Python)", (small.get("python") or {}).get("total"), py.get("total")),
        ]
        rows = [
            [name, fmt_s(a), fmt_s(b), f"{b / a:.2f}x" if a and b else "-"] for name, a, b in lines if a is not None
        ]
        parts.append(
            f"From {hosts // 2} to {hosts} hosts (medians of this run):\n\n"
            + md_table(["what", f"{hosts // 2} hosts", f"{hosts} hosts", "ratio"], rows)
            + "\n\nThe no-op play's ratio is what ansible-playbook itself pays for the larger inventory "
            "(reading it, building every host), with no task of the role in it."
        )
    if "100x" in check.target:
        parts.append(
            f"At {hosts} hosts the naive loop adds {fmt_s(r.get('naive_adds'))} (estimated from "
            f"{len(r.get('naive_samples', []))} sample run(s) on a part of the hosts), the compute step "
            f"{fmt_s(r.get('step'))} (its own time) and adds {fmt_s(r.get('adds'))} (play - no-op)."
        )
    return "\n\n".join(parts) or "See *(c) where the compute step's time goes* above."


MODULE_TASKS = (
    "Read the host's overlay state, kernel, underlay and VTEP",
    "Converge the host's overlay networks, endpoints, ARP and FDB tables",
)


def _why_lab(results: Results) -> str:
    tasks = results.extra.get("lab_tasks") or []
    lab = results.extra.get("lab") or {}
    text = (
        f"A ping play is one module run per host ({fmt_s(lab.get('ping'))}); the no-change site.yml took "
        f"{fmt_s(lab.get('again'))}."
    )
    if tasks:
        modules = [t for t in tasks if any(t["name"].endswith(m) for m in MODULE_TASKS)]
        others = [t for t in tasks if t not in modules]
        module_time = sum(t["seconds"] for t in modules)
        other_time = sum(t["seconds"] for t in others)
        text += (
            f" In the last no-change run (bench_timer callback: each task from its start to the next one's, over "
            f"all hosts) the role's {len(modules)} module tasks (overlay_facts, then overlay_host: one module run "
            f"per host each) took {fmt_s(module_time)} together and the other {len(others)} tasks of the table "
            f"below {fmt_s(other_time)} together; the rest of the wall clock is ansible-playbook's start, the "
            "inventory and the play's setup."
        )
        rows = [[t["name"], fmt_s(t["seconds"])] for t in tasks]
        text += "\n\nEvery task of the last no-change run, in order (bench_timer callback):\n\n" + md_table(
            ["task", "time"], rows
        )
    return text


# --- the plot ------------------------------------------------------------------------------------------------


def _log_axes(ax, xlabel: str, ylabel: str, title: str) -> None:
    ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=ylabel, title=title)


def _finish_axes(ax, ticks: list, labels: list[str], **font) -> None:
    """The measured sizes as the x ticks (no minor ticks), a grid, and a legend when something was plotted."""
    import matplotlib.ticker

    if ticks:
        ax.set_xticks(ticks, labels, **font)
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**font)


def plot(results: Results) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    _log_axes(left, "entries (from empty, one vxlan device)", "seconds", "(a) apply time vs entries")
    colors = {"fdb": "tab:blue", "bridge": "tab:blue", "neigh": "tab:green", "ip -batch": "tab:green"}
    sizes: set = set()
    for label, points in results.plot.get("entries", {}).items():
        pts = [(x, y) for x, y in points if y]
        if pts:
            color = next((c for key, c in colors.items() if key in label), None)
            style = "--" if "batch" in label else "-"
            left.plot(*zip(*pts, strict=True), style, marker="o", color=color, label=label)
            sizes.update(x for x, y in pts)
    _finish_axes(left, sorted(sizes), [f"{x // 1000}k" for x in sorted(sizes)])
    fleet = results.extra.get("fleet") or {}
    _log_axes(right, "hosts (5 endpoints each)", "seconds (wall clock)", "(c) the fleet's overlay vs hosts")
    for label, points in results.plot.get("hosts", {}).items():
        pts = [(x, y) for x, y in points if y]
        if pts:
            right.plot(*zip(*pts, strict=True), marker="o", label=label)
    for hosts, row in fleet.items():
        if row.get("timed_out") and row.get("compute"):
            right.annotate(
                "cut at its time limit", (hosts, row["compute"]), textcoords="offset points", xytext=(-90, 8)
            )
    _finish_axes(right, sorted(fleet), [str(h) for h in sorted(fleet)], fontsize="small")
    fig.suptitle(f"netfleet.overlay make bench, {results.started}", fontsize="medium")
    fig.tight_layout()
    fig.savefig(PNG, dpi=110)
    plt.close(fig)
    return PNG


# --- docs/performance.md ---------------------------------------------------------------------------------------


def write_markdown(results: Results) -> Path:
    out = [
        "# Performance",
        "",
        f"Written by `make bench` on {results.started} (the whole run took {results.total_seconds:.0f} s). "
        "Every figure below comes from that one run: each pair of compared figures was measured side by side, "
        "on the same data, on the same machine, minutes apart at most. Do not edit this file: run `make bench`.",
        "",
        "**The machine is shared and noisy**: other developers' tests run at the same time, so single figures "
        "move by tens of percent between runs (see the load averages). Cheap measurements are medians of three "
        "runs; expensive ones ran once.",
        "",
        "## Machine",
        "",
        md_table(["what", "value"], [[k, str(v)] for k, v in results.machine.items()]),
        "",
        f"Forks: **{results.forks}** for every ansible-playbook run, the faster of forks 2 and 10 on the lab's "
        f"ping play in this run ({results.forks_note}).",
        "",
        "## Targets",
        "",
        md_table(CHECK_COLUMNS, check_rows(results)),
        "",
    ]
    fleet = results.extra.get("fleet") or {}
    for sec in sections(results):
        out += [f"## {sec['title']}", "", md_table(sec["columns"], sec["rows"]), ""]
        out += [f"- {note}" for note in sec["notes"]]
        out.append("")
        if sec is results.sections.get("c") and fleet:
            columns, rows = fleet_profile(fleet)
            out += ["### (c) where the compute step's time goes", "", FLEET_PROFILE, "", md_table(columns, rows), ""]
    missed = [c for c in results.checks if c.why]
    if missed:
        out += ["## Why targets were missed", ""]
        for c in missed:
            out += [f"### {c.bench}: {c.target} ({c.verdict}, {c.ratio_text()})", "", c.why, ""]
    out += [
        "## Scaling",
        "",
        f"![time vs entries and time vs hosts]({PNG.name})",
        "",
        "## How it is measured",
        "",
        "- `make bench` runs `python -m bench` as root (it installs `requirements/bench.txt` into `.venv` first). "
        "Wall times are `time.perf_counter` around a subprocess or a call; peak memory is the processes' "
        "`VmHWM`, polled from /proc. Every step has a time limit and the whole run a budget (`BENCH_BUDGET`, "
        "default 570 s); a figure cut by its limit is shown as a lower bound (`>`), a step the budget had no "
        "room for as *not run*.",
        "- (a)/(b): every device is `vxlan0` (VNI 4242, learning off, proxy on, `local 198.19.0.1` on a veth "
        "`ul0` as underlay) in a throwaway network namespace of this run (unique prefix, removed at the end, "
        "also on failure). The engine is called in-process: `_table.reconcile(_rtnl.namespace.Namespace(ns), spec, "
        "dev='vxlan0', state='overridden', wanted=...)`, timed from opening the namespace to closing it. "
        "iproute2 gets the same entries as `fdb replace ... self permanent` / `neigh replace ... nud permanent` "
        "lines in a file (`bridge -n NS -batch FILE`, `ip -n NS -batch FILE`), timed as the whole process, on an "
        "identical fresh device. After each pair both tables are read back and must be equal. Entries: "
        "10.224.0.2... with Docker-style MACs, FDB destinations spread over 1000 VTEPs in 198.19.0.0/16.",
        "- (b) reconciles the 20k table that (a) built once more (it must plan no change) and times one "
        "`bridge -j fdb show dev vxlan0` / `ip -j neigh show dev vxlan0` process on the same device.",
        "- (p): `ansible-playbook -i localhost,` (local connection, forks 1) with one `netfleet.overlay.fdb` or "
        "`neigh` task, `state: overridden`, its 100,000 entries (those of (a)) from a `vars_files` JSON file, "
        "against a fresh `vxlan0` (as in (a)); the task is that play minus a no-op play (the same playbook and "
        "`vars_files`, no task), and iproute2 gets the same entries as one `bridge -batch`/`ip -batch` file on an "
        "identical fresh device. *carry only*: the same play with the entries given to `bench_sink` "
        "(`tools/bench/library`, a module that takes them and does nothing), minus the no-op play. The plays "
        "alternate, each device is read back and must hold exactly the entries, figures are medians. "
        "`NETFLEET_BENCH_BASELINE=DIR` adds the same task against another version of the collection (a "
        "collections path), in the same run.",
        "- (c): generated inventories (`ansible_connection: local`, nothing runs on a host) with 5 endpoints "
        "per host, explicit addresses, and hosts/20 networks of 100 endpoints (50 networks at 1000 hosts), so a "
        "host's tables do not grow with the fleet. `tools/bench/playbooks/compute.yml` imports the role's own "
        "`roles/overlay/tasks/compute.yml`, its one run_once `netfleet.overlay.overlay_plan` task; `noop.yml` is "
        "a play over the same hosts with no task; the two alternate, up to three pairs where they are cheap, "
        "and each figure is a median. `naive.yml` is the Jinja loop over `hostvars` (a set_fact per host). "
        "*plan alone* runs the action plugin's Python (`fleet_records`, `compute_plan`, `pack_plan`, "
        "`plan_summary`) on the same data in this process. With a fixed number of networks instead, every "
        "host's tables grow with the fleet, and their sum with the square of the hosts.",
        "- (d)/(e): `tools/netfleet-lab up --hosts 30` in a directory of this run (always taken down), 3 "
        "networks and 2 endpoints per host, `ansible-playbook -i LAB/inventory.yml -i VARS playbooks/site.yml`. "
        "(e) is the first run on the fresh lab, (d) the next two (they must change nothing) against "
        "`tools/bench/playbooks/ping.yml` (`ansible.builtin.ping` on every host).",
        "- (m): `tools/netfleet-lab up --hosts 3` in a directory of this run (always taken down), one network with "
        "an endpoint on every host, and `mover` (an explicit address, same name) moved between h1 and h2 by "
        "rewriting the host_vars, `playbooks/site.yml` each time. h3's endpoint pings the mover with "
        "`ping -i 0.01` (100 packets/s) inside the lab host, started before each run with a move and stopped by "
        "its pid (SIGINT) half a second after it; packets lost = transmitted - received from ping's summary. "
        "Each move is followed by a run of the same placement (no move, no change), so the two kinds alternate.",
        "",
    ]
    DOC.write_text("\n".join(out), encoding="utf-8")
    return DOC
