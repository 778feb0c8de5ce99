# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""(w) TCP throughput between two lab hosts: an encrypted network, a plain network and the underlay, side by side.

A 2-host lab with two networks, one ``encrypted: true`` (its VXLAN inside WireGuard) and one plain, and an endpoint
of each on each host. iperf3 (one TCP stream, ``ROUND_SECONDS`` each) runs from h1 to h2 on three paths: between the
two encrypted endpoints, between the two plain endpoints, and between the hosts' own namespaces (the underlay,
VTEP to VTEP). The paths alternate within each round, the first path of a round rotating, so all three see the same
load; each figure is the median of ``ROUNDS``. The ratios are what this machine can say: the lab's hosts are
namespaces on one machine, so the absolute figures are those of its CPU, not of a wire. Which WireGuard ran
(kernel or wireguard-go, userspace) is read from overlay_facts. The lab lives in this run's directory and is always
taken down.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from devenv import REPO

from bench.common import BIN, Budget, Check, Results, log, median, playbook_env
from bench.common import run_timed as timed
from bench.lab import LAB, recap, take_down

HOSTS = ("h1", "h2")
NETWORKS = [
    {"name": "benchplain", "vni": 730, "subnet": "10.233.0.0/24"},
    {"name": "benchenc", "vni": 731, "subnet": "10.234.0.0/24", "encrypted": True},
]
# host -> [(endpoint, network, address)]
ENDPOINTS = {
    "h1": [("p1", "benchplain", "10.233.0.11"), ("c1", "benchenc", "10.234.0.11")],
    "h2": [("p2", "benchplain", "10.233.0.12"), ("c2", "benchenc", "10.234.0.12")],
}
# path -> (client netns on h1 or "" for the host's own, server netns on h2, server address)
PATHS = {
    "encrypted overlay": ("c1", "c2", "10.234.0.12"),
    "plain overlay": ("p1", "p2", "10.233.0.12"),
    "underlay": ("", "", "198.18.1.2"),
}
ROUNDS = 3
ROUND_SECONDS = 4
PORT = 5211


def write_vars(path: Path) -> None:
    """An inventory source with only variables: both networks, and each host's two endpoints."""
    (path / "host_vars").mkdir(parents=True, exist_ok=True)
    (path / "lab.yml").write_text("all:\n  children:\n    lab:\n", encoding="utf-8")
    for host, eps in ENDPOINTS.items():
        endpoints = [{"name": name, "network": net, "address": address} for name, net, address in eps]
        text = json.dumps({"overlay_networks": NETWORKS, "overlay_endpoints": endpoints})
        (path / "host_vars" / f"{host}.yml").write_text(text, encoding="utf-8")


def _exec(lab_dir: Path, host: str, argv: list[str], timeout: float = 60):
    return timed([*LAB, "exec", "--dir", str(lab_dir), host, "--", *argv], timeout=timeout)


def _in(netns: str, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv] if netns else argv


def iperf(lab_dir: Path, work: Path, path: str) -> float:
    """One TCP stream h1 -> h2 for ROUND_SECONDS on ``path``: the receiver's bits per second."""
    client, server, address = PATHS[path]
    log_file = work / f"iperf3-server-{PORT}.log"
    start = _exec(
        lab_dir,
        "h2",
        ["sh", "-c", f"{' '.join(_in(server, ['iperf3', '-s', '-1', '-p', str(PORT)]))} >{log_file} 2>&1 & echo $!"],
    )
    if start.returncode != 0:
        raise RuntimeError(f"iperf3 server on h2 ({path}): {start.stderr.strip()[-300:]}")
    pid = start.stdout.split()[-1]
    try:
        for attempt in range(20):  # until the server listens
            res = _exec(
                lab_dir,
                "h1",
                _in(client, ["iperf3", "-c", address, "-p", str(PORT), "-t", str(ROUND_SECONDS), "-J"]),
                timeout=ROUND_SECONDS + 30,
            )
            if res.returncode == 0:
                return json.loads(res.stdout)["end"]["sum_received"]["bits_per_second"]
            if "Connection refused" not in res.stdout + res.stderr or attempt == 19:
                raise RuntimeError(f"iperf3 client on h1 ({path}): {(res.stdout + res.stderr).strip()[-500:]}")
            time.sleep(0.1)
    finally:
        _exec(lab_dir, "h2", ["sh", "-c", f"kill {pid} 2>/dev/null; true"])
    raise AssertionError("unreachable")


def rcvbuf_errors(lab_dir: Path) -> int | None:
    """UDP datagrams h2's own namespace dropped for a full receive buffer (wireguard-go's socket is the only UDP
    socket there that receives in this benchmark; the kernel's VXLAN sockets do not queue)."""
    res = _exec(lab_dir, "h2", ["cat", "/proc/net/snmp"])
    rows = [line.split()[1:] for line in res.stdout.splitlines() if line.startswith("Udp:")]
    try:
        return int(dict(zip(rows[0], rows[1], strict=True))["RcvbufErrors"])
    except (IndexError, KeyError, ValueError):
        return None


def implementation(lab_dir: Path, forks: int) -> str:
    """Which WireGuard h1 runs, from overlay_facts (kernel, userspace or '?')."""
    res = timed(
        [str(BIN / "ansible"), "-i", str(lab_dir / "inventory.yml"), "h1", "-m", "netfleet.overlay.overlay_facts"],
        timeout=60,
        env=playbook_env(forks),
    )
    try:
        found = json.loads(res.stdout.split("=>", 1)[1])["ansible_facts"]["netfleet_overlay"]["wireguard"]
        return str(found["implementation"])
    except (IndexError, KeyError, TypeError, ValueError):
        return "?"


def run(results: Results, budget: Budget, work: Path, forks: int) -> None:
    """Measure (w): ROUNDS rounds of the three paths, alternating, on a 2-host lab."""
    lab_dir, vars_dir = work / "wg-lab", work / "wg-vars"
    sec = results.section(
        "w",
        "(w) TCP throughput h1 -> h2 (iperf3, one stream): encrypted overlay, plain overlay and underlay",
        ["path", "rounds", "Gbit/s (median)", "each round", "vs underlay"],
    )
    needed = 60 + ROUNDS * len(PATHS) * (ROUND_SECONDS + 3)
    if budget.left() < needed:
        sec["notes"].append(f"not run: {budget.left():.0f} s of the budget left, {needed} s needed")
        return
    up = timed([*LAB, "up", "--hosts", str(len(HOSTS)), "--dir", str(lab_dir)], timeout=120)
    owner = os.getpid()
    figures: dict[str, list[float]] = {path: [] for path in PATHS}
    try:
        if up.returncode != 0:
            raise RuntimeError(f"netfleet-lab up failed: {(up.stdout + up.stderr).strip()[-800:]}")
        write_vars(vars_dir)
        inventory = ["-i", str(lab_dir / "inventory.yml"), "-i", str(vars_dir)]
        site = timed(
            [str(BIN / "ansible-playbook"), *inventory, str(REPO / "playbooks" / "site.yml")],
            timeout=240,
            env=playbook_env(forks),
        )
        hosts = recap(site.stdout)
        if site.returncode or len(hosts) != len(HOSTS) or any(c[2] or c[3] for c in hosts.values()):
            tail = (site.stdout + site.stderr).strip().splitlines()[-20:]
            raise RuntimeError(f"site.yml: exit {site.returncode}\n" + "\n".join(tail))
        impl = implementation(lab_dir, forks)
        if impl not in ("kernel", "userspace"):  # then the "encrypted" figure would not be one
            raise RuntimeError(f"overlay_facts on h1 reports no WireGuard in use (implementation: {impl})")
        log(f"  lab: 2 hosts, converged in {site.seconds:.1f} s; WireGuard implementation: {impl}")
        order = list(PATHS)
        for number in range(ROUNDS):
            for path in order[number % len(order) :] + order[: number % len(order)]:
                bps = iperf(lab_dir, work, path)
                figures[path].append(bps)
                log(f"  round {number + 1}: {path}: {bps / 1e9:.2f} Gbit/s")
        drops = rcvbuf_errors(lab_dir)
        version = _exec(lab_dir, "h1", ["wireguard-go", "--version"]).stdout.split("\n", 1)[0].strip()
    finally:
        if os.getpid() == owner:  # never from a forked child
            take_down(lab_dir, vars_dir)

    medians = {path: median(values) for path, values in figures.items()}
    under = medians["underlay"]
    for path, values in figures.items():
        ratio = f"{medians[path] / under:.2f}x" if under and medians[path] else "-"
        sec["rows"].append(
            [
                path,
                str(len(values)),
                f"{medians[path] / 1e9:.2f}" if medians[path] else "-",
                ", ".join(f"{v / 1e9:.2f}" for v in values),
                ratio,
            ]
        )
    enc, plain = medians["encrypted overlay"], medians["plain overlay"]
    sec["notes"].append(
        f"WireGuard implementation: {impl}"
        f"{f' ({version}, in user space)' if impl == 'userspace' else ''}; h2 dropped {drops} UDP datagrams for a "
        "full socket receive buffer in the run (wireguard-go's socket keeps the kernel's default size). "
        f"The paths alternate within each of {ROUNDS} rounds of {ROUND_SECONDS} s; the lab's hosts are namespaces "
        "of one machine, so only the ratios mean something: every packet of all three paths is handled by the same "
        "CPUs (the encrypted one also by wireguard-go's encryption and its trips through a TUN device)."
    )
    results.extra["wireguard"] = {"implementation": impl, **medians}
    results.checks.append(
        Check(
            "w",
            "encrypted overlay vs plain overlay throughput (no target)",
            f"{enc / 1e9:.2f} vs {plain / 1e9:.2f} Gbit/s, {impl}",
            enc / plain if enc and plain else None,
            None,
        )
    )
    results.checks.append(
        Check(
            "w",
            "encrypted overlay vs underlay throughput (no target)",
            f"{enc / 1e9:.2f} vs {under / 1e9:.2f} Gbit/s, {impl}",
            enc / under if enc and under else None,
            None,
        )
    )
    results.checks.append(
        Check(
            "w",
            "plain overlay vs underlay throughput (no target)",
            f"{plain / 1e9:.2f} vs {under / 1e9:.2f} Gbit/s",
            plain / under if plain and under else None,
            None,
        )
    )
