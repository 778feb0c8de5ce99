# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""(m) moves on a 3-host lab: the packets a move loses, and site.yml with a move next to site.yml without one.

One network, a resident endpoint on every host and ``mover`` (same name and address) that moves between h1 and h2.
A ping at 100 packets per second from h3's endpoint to the mover (``ping -i 0.01`` inside the lab host, started
and stopped by its pid) runs through each site.yml that moves it. The runs alternate: a move, then a run of the
same placement (no move, nothing to change), so both see the same load. The lab lives in this run's directory and
is always taken down.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from devenv import REPO

from bench.common import BIN, Budget, Check, Results, fmt_s, log, median, playbook_env
from bench.common import run_timed as timed
from bench.lab import LAB, recap, take_down

HOSTS = ("h1", "h2", "h3")
NETWORK = {"name": "moves", "vni": 620, "subnet": "10.232.0.0/24"}
RESIDENTS = {"h1": ("res1", "10.232.0.11"), "h2": ("res2", "10.232.0.12"), "h3": ("pinger", "10.232.0.13")}
MOVER = "10.232.0.50"
MOVES = 3  # moves measured, each followed by a run without a move
_SUMMARY = re.compile(r"(\d+) packets transmitted, (\d+) received")


def write_vars(path: Path, mover_host: str) -> None:
    """An inventory source with only variables: the network, each host's resident endpoint, and the mover."""
    (path / "host_vars").mkdir(parents=True, exist_ok=True)
    (path / "lab.yml").write_text("all:\n  children:\n    lab:\n", encoding="utf-8")
    for host in HOSTS:
        name, address = RESIDENTS[host]
        endpoints = [{"name": name, "network": NETWORK["name"], "address": address}]
        if host == mover_host:
            endpoints.append({"name": "mover", "network": NETWORK["name"], "address": MOVER})
        text = json.dumps({"overlay_networks": [NETWORK], "overlay_endpoints": endpoints})
        (path / "host_vars" / f"{host}.yml").write_text(text, encoding="utf-8")


def _exec(lab_dir: Path, host: str, script: str) -> str:
    res = timed([*LAB, "exec", "--dir", str(lab_dir), host, "--", "sh", "-c", script], timeout=30)
    if res.returncode != 0:
        raise RuntimeError(f"{host}: {script!r} failed: {(res.stdout + res.stderr).strip()[-400:]}")
    return res.stdout


class Ping:
    """``ping -i 0.01`` from h3's endpoint, in the background of the lab host; stopped by its pid."""

    def __init__(self, lab_dir: Path, out: Path):
        self.lab_dir, self.out = lab_dir, out  # /tmp is shared between the lab hosts and the machine
        script = f"ip netns exec pinger ping -n -q -i 0.01 {MOVER} >{out} 2>&1 </dev/null & echo $!"
        self.pid = int(_exec(lab_dir, "h3", script).split()[-1])

    def stop(self) -> tuple[int, int]:
        """(transmitted, received) from ping's summary after SIGINT."""
        _exec(self.lab_dir, "h3", f"kill -INT {self.pid}")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = _SUMMARY.search(self.out.read_text(encoding="utf-8"))
            if found:
                return int(found[1]), int(found[2])
            time.sleep(0.1)
        raise RuntimeError(f"ping printed no summary: {self.out.read_text(encoding='utf-8')[-300:]!r}")


def run(results: Results, budget: Budget, work: Path, forks: int) -> None:
    """Measure (m): MOVES moves, each with its lost packets and run time, and as many runs without a move."""
    lab_dir, vars_dir = work / "moves-lab", work / "moves-vars"
    inventory = ["-i", str(lab_dir / "inventory.yml"), "-i", str(vars_dir)]
    sec = results.section(
        "m",
        "(m) moves: a 3-host lab, one endpoint moved between two hosts, a ping at 100 packets/s from the third",
        ["site.yml", "runs", "time (median)", "each run", "changed hosts", "packets lost (each move)"],
    )

    def play(mover_host: str) -> dict:
        write_vars(vars_dir, mover_host)
        result = timed(
            [str(BIN / "ansible-playbook"), *inventory, str(REPO / "playbooks" / "site.yml")],
            timeout=180,
            env=playbook_env(forks),
        )
        hosts = recap(result.stdout)
        bad = [h for h, (_ok, _changed, unreach, failed) in hosts.items() if unreach or failed]
        if result.timed_out or result.returncode or bad or len(hosts) != len(HOSTS):
            tail = (result.stdout + result.stderr).strip().splitlines()[-20:]
            raise RuntimeError(f"site.yml (mover on {mover_host}): exit {result.returncode}\n" + "\n".join(tail))
        return {"seconds": result.seconds, "changed": sum(1 for counts in hosts.values() if counts[1])}

    if budget.left() < 90:  # a lab, a first converge and 2 x MOVES runs of about 10 s each
        sec["notes"].append(f"not run: {budget.left():.0f} s of the budget left")
        return
    up = timed([*LAB, "up", "--hosts", str(len(HOSTS)), "--dir", str(lab_dir)], timeout=120)
    owner = os.getpid()
    moved: list[dict] = []
    still: list[dict] = []
    try:
        if up.returncode != 0:
            raise RuntimeError(f"netfleet-lab up failed: {(up.stdout + up.stderr).strip()[-800:]}")
        first = play("h1")
        log(f"  lab: {len(HOSTS)} hosts up, first converge {fmt_s(first['seconds'])}")
        where = "h1"
        for number in range(MOVES):
            target = "h2" if where == "h1" else "h1"
            ping = Ping(lab_dir, work / f"moves-ping-{number}.txt")
            time.sleep(0.5)
            result = play(target)
            time.sleep(0.5)
            sent, received = ping.stop()
            moved.append({**result, "move": f"{where}->{target}", "sent": sent, "lost": sent - received})
            log(f"  move {where}->{target}: {fmt_s(result['seconds'])}, {sent - received} of {sent} packets lost")
            where = target
            still.append(play(where))
            log(f"  no move: {fmt_s(still[-1]['seconds'])}")
    finally:
        if os.getpid() == owner:  # never from a forked child
            take_down(lab_dir, vars_dir)

    with_move, without = median(r["seconds"] for r in moved), median(r["seconds"] for r in still)
    sec["rows"] += [
        [
            "with a move (3 passes)",
            str(len(moved)),
            fmt_s(with_move),
            ", ".join(fmt_s(r["seconds"]) for r in moved),
            ", ".join(str(r["changed"]) for r in moved),
            ", ".join(f"{r['move']}: {r['lost']} of {r['sent']}" for r in moved),
        ],
        [
            "without a move (1 pass, no change)",
            str(len(still)),
            fmt_s(without),
            ", ".join(fmt_s(r["seconds"]) for r in still),
            ", ".join(str(r["changed"]) for r in still),
            "-",
        ],
    ]
    sec["notes"].append(
        f"the runs alternate (a move, then the same placement again), forks {forks}; each time is the wall clock "
        "of the whole ansible-playbook process. A move changes all 3 hosts (the new host builds the endpoint, the "
        "third switches its FDB entry, the old host removes it); the run after it changes none."
    )
    worst = max((r["lost"] for r in moved), default=None)
    results.extra["moves"] = {"with": with_move, "without": without, "lost": [r["lost"] for r in moved]}
    results.checks.append(
        Check(
            "m",
            "packets lost per move at 100 packets/s (the most of any move) <= 1",
            ", ".join(f"{r['lost']} of {r['sent']}" for r in moved),
            worst,
            1.0,
            unit="packets",
        )
    )
    results.checks.append(
        Check(
            "m",
            "site.yml with a move vs without (no target: what the passes cost)",
            f"{fmt_s(with_move)} vs {fmt_s(without)}",
            with_move / without if with_move and without else None,
            None,
        )
    )
