# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""(d) and (e): site.yml on a 30-host lab (tools/netfleet-lab): first converge, then no-change vs ping only.

The lab lives in this run's own directory and is always taken down (``netfleet-lab down``), even on failure.
The topology is generated: 3 networks, 2 endpoints on every host (60 endpoints, 20 per network).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from devenv import REPO

from bench.common import BIN, PLAYBOOKS, Budget, Check, Results, fmt_s, log, median, playbook_env, read_timer
from bench.common import run_timed as timed

HOSTS = 30
NETWORKS = [
    {"name": "front", "vni": 4101, "subnet": "10.231.0.0/24"},
    {"name": "back", "vni": 4102, "subnet": "10.231.1.0/24"},
    {"name": "data", "vni": 4103, "subnet": "10.231.2.0/24"},
]
FORKS_TRIED = (2, 10)
CHEAP = 20.0  # seconds: a no-change site.yml run faster than this is repeated once (median of 2)
LAB = [str(BIN / "python"), str(REPO / "tools" / "netfleet-lab")]
_RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def write_vars(path: Path) -> None:
    """An inventory source with only variables: the networks, and 2 endpoints per host."""
    (path / "group_vars").mkdir(parents=True)
    (path / "host_vars").mkdir()
    (path / "lab.yml").write_text("all:\n  children:\n    lab:\n", encoding="utf-8")
    lines = ["overlay_networks:"]
    for net in NETWORKS:
        lines.append(f"  - {{name: {net['name']}, vni: {net['vni']}, subnet: {net['subnet']}}}")
    (path / "group_vars" / "all.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for k in range(1, HOSTS + 1):
        first, second = NETWORKS[k % 3]["name"], NETWORKS[(k + 1) % 3]["name"]
        text = f"overlay_endpoints:\n  - {{name: e{k}a, network: {first}}}\n  - {{name: e{k}b, network: {second}}}\n"
        (path / "host_vars" / f"h{k}.yml").write_text(text, encoding="utf-8")


def take_down(lab_dir: Path, vars_dir: Path) -> None:
    """``netfleet-lab down`` on a lab of this run, then its variables (kept when the lab could not be removed)."""
    down = timed([*LAB, "down", "--dir", str(lab_dir)], timeout=120)
    if down.returncode != 0:
        log(f"  WARNING: netfleet-lab down --dir {lab_dir} failed: {(down.stdout + down.stderr)[-500:]}")
    elif not lab_dir.exists():
        shutil.rmtree(vars_dir, ignore_errors=True)


def recap(stdout: str) -> dict:
    """host -> (ok, changed, unreachable, failed) from the PLAY RECAP."""
    return {m[1]: tuple(int(x) for x in m.groups()[1:]) for m in _RECAP.finditer(stdout)}


def run(results: Results, budget: Budget, work: Path, share: float) -> int:
    """Measure (d) and (e) within about ``share`` seconds; returns the forks chosen (the faster of FORKS_TRIED
    on the ping play). A play cut by its time limit is reported as a lower bound."""
    deadline = budget.elapsed() + share
    lab_dir, vars_dir = work / "lab", work / "vars"
    write_vars(vars_dir)
    inventory = ["-i", str(lab_dir / "inventory.yml"), "-i", str(vars_dir)]
    sec = results.section(
        "de",
        f"(d) and (e) site.yml on a {HOSTS}-host lab ({len(NETWORKS)} networks, {2 * HOSTS} endpoints)",
        ["play", "forks", "time", "per host", "changed hosts", "runs"],
    )

    def play(name: str, forks: int, limit: float, timer: str | None = None) -> dict:
        """One run; ``limit`` is its own cap, further bounded by the lab's share (never below 30 s)."""
        playbook = REPO / "playbooks" / "site.yml" if name == "site" else PLAYBOOKS / f"{name}.yml"
        out = work / f"timer-{timer}.json" if timer else None
        timeout = max(30.0, min(limit, deadline - budget.elapsed()))
        result = timed(
            [str(BIN / "ansible-playbook"), *inventory, str(playbook)], timeout=timeout, env=playbook_env(forks, out)
        )
        hosts = recap(result.stdout)
        bad = [h for h, (ok, changed, unreach, failed) in hosts.items() if unreach or failed]
        if not result.timed_out and (result.returncode or bad or len(hosts) != HOSTS):
            tail = (result.stdout + result.stderr).strip().splitlines()[-20:]
            raise RuntimeError(
                f"{name}.yml on the lab: exit {result.returncode}, failed/unreachable: {bad[:5]}\n" + "\n".join(tail)
            )
        return {
            "seconds": result.seconds,
            "cut": result.timed_out,
            "changed": sum(1 for (ok, ch, un, fa) in hosts.values() if ch),
            "tasks": read_timer(out) if out else [],
        }

    up = timed([*LAB, "up", "--hosts", str(HOSTS), "--dir", str(lab_dir)], timeout=120)
    owner = os.getpid()
    try:
        if up.returncode != 0:
            raise RuntimeError(f"netfleet-lab up failed: {(up.stdout + up.stderr).strip()[-800:]}")
        log(f"  lab: {HOSTS} hosts up in {fmt_s(up.seconds)}")

        # forks: the faster of FORKS_TRIED on the ping play (on 2 cores more forks may only add contention)
        pings: dict[int, list[dict]] = {}
        for forks in FORKS_TRIED:
            pings[forks] = [play("ping", forks, 90)]
            log(f"  forks {forks}: ping play {fmt_s(pings[forks][0]['seconds'])}")
        chosen = min(FORKS_TRIED, key=lambda f: pings[f][0]["seconds"])
        results.forks = chosen
        results.forks_note = ", ".join(f"forks {f}: {fmt_s(pings[f][0]['seconds'])}" for f in FORKS_TRIED)

        first = play("site", chosen, 240, timer="site-first")
        log(f"  (e) first converge {fmt_s(first['seconds'], lower_bound=first['cut'])} ({first['changed']} changed)")
        again: list[dict] = []
        while not first["cut"] and len(again) < 2:
            if again and (again[-1]["seconds"] > CHEAP or budget.elapsed() + again[-1]["seconds"] * 1.2 > deadline):
                break  # a second no-change run only when it is cheap and fits the lab's share
            again.append(play("site", chosen, 180, timer=f"site-again-{len(again)}"))
            log(f"  (d) no-change site.yml {fmt_s(again[-1]['seconds'], lower_bound=again[-1]['cut'])}")
            if again[-1]["cut"]:
                break
        if budget.elapsed() + pings[chosen][0]["seconds"] < deadline:
            pings[chosen].append(play("ping", chosen, 90))
    finally:
        if os.getpid() == owner:  # never from a forked child
            take_down(lab_dir, vars_dir)

    ping = median(p["seconds"] for p in pings[chosen])
    site_again = median(r["seconds"] for r in again)
    again_cut = any(r["cut"] for r in again)
    changed_again = max((r["changed"] for r in again), default=0)
    rows = [
        ("site.yml, first converge (e)", first["seconds"], first["cut"], first["changed"], 1),
        ("site.yml, no change (d)", site_again, again_cut, changed_again, len(again)),
        ("ping only (d)", ping, False, 0, len(pings[chosen])),
    ]
    sec["rows"] += [
        [
            name,
            str(chosen),
            fmt_s(t, lower_bound=cut),
            fmt_s(t / HOSTS if t else None, lower_bound=cut),
            str(ch),
            str(n),
        ]
        for name, t, cut, ch, n in rows
    ]
    if changed_again and not again_cut:
        sec["notes"].append(f"the no-change runs reported changes on {changed_again} host(s): not idempotent")
    sec["notes"].append(f"forks: {results.forks_note} on the ping play; every lab run used forks {chosen}.")
    sec["notes"].append(f"ping only: median of the {len(pings[chosen])} ping plays at forks {chosen}.")
    results.extra["lab_tasks"] = again[-1]["tasks"] if again else []
    results.extra["lab_first_tasks"] = first["tasks"]
    results.extra["lab"] = {"first": first["seconds"], "again": site_again, "ping": ping}
    results.checks.append(
        Check(
            "d",
            f"no-change site.yml on {HOSTS} hosts <= 3x a ping-only play",
            f"{fmt_s(site_again, lower_bound=again_cut)} vs {fmt_s(ping)}",
            site_again / ping if site_again else None,
            3.0,
            lower_bound=again_cut,
        )
    )
    results.checks.append(
        Check(
            "e",
            f"first converge of the {HOSTS}-host lab (no target: time and per host)",
            f"{fmt_s(first['seconds'], lower_bound=first['cut'])}, "
            f"{fmt_s(first['seconds'] / HOSTS, lower_bound=first['cut'])} per host",
            None,
            None,
        )
    )
    return chosen
