# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Moves and address reuse on a 3-host lab (issue 15), on a network of its own (``moves``, VNI 620).

``mover`` (10.232.0.50, same name and address) moves between h1 and h2 five times, one ``site.yml`` each, while
``pinger`` on h3 pings it 100 times a second (``ping -i 0.01`` inside the lab host, started and stopped by its
pid): the role builds it on the new host, switches every peer's FDB entry with one replace, then removes it from
the old host, so each move loses at most one packet (the counts are printed). A run with a move is predicted by
``--check`` without a change, and a second run of the same placement changes nothing. Address reuse: ``old``
(h1, 10.232.0.60, an explicit MAC) is removed and ``new`` (h2) takes its address with another MAC in one run;
afterwards no host has an ARP or FDB entry (static or learned) with the old MAC, and every peer's ARP entry names
the new MAC and its FDB entry h2's VTEP.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from lab_helpers import needs_root
from reliability_helpers import HOSTS, demo_lab
from support.demo_fleet import VTEP

pytestmark = [pytest.mark.lab, needs_root]

NETNS = "ovl-620"
MOVER = "10.232.0.50"
REUSED = "10.232.0.60"
OLD_MAC, NEW_MAC = "02:00:0a:e8:00:6a", "02:00:0a:e8:00:6b"
RESIDENTS = {"h1": ("res1", "10.232.0.11"), "h2": ("res2", "10.232.0.12"), "h3": ("pinger", "10.232.0.13")}
MOVES = ("h2", "h1", "h2", "h1", "h2")  # mover starts on h1
MAX_LOST = 1  # packets per move


def overrides(extra: dict[str, list[dict]]) -> dict[str, str]:
    """host_vars of each host: the ``moves`` network alone, the host's resident endpoint and ``extra[host]``."""
    out = {}
    for host in HOSTS:
        name, address = RESIDENTS[host]
        endpoints = [{"name": name, "network": "moves", "address": address}, *extra.get(host, [])]
        out[host] = json.dumps(
            {
                "overlay_networks": [{"name": "moves", "vni": 620, "subnet": "10.232.0.0/24"}],
                "overlay_endpoints": endpoints,
            }
        )
    return out


def mover_on(host: str) -> dict[str, str]:
    return overrides({host: [{"name": "mover", "network": "moves", "address": MOVER}]})


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    for fleet in demo_lab(tmp_path_factory, "moves"):
        play_ok(fleet, mover_on("h1"))
        yield fleet


def play_ok(fleet, placement: dict, *args: str):
    res, recap, changed = fleet.play("site.yml", *args, overrides=placement)
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]
    assert set(recap) == set(HOSTS), recap
    return res, changed


class Ping:
    """``ping -i 0.01`` from pinger (h3) to ``address``, in the background of the lab host, stopped by its pid."""

    def __init__(self, fleet, address: str, name: str):
        self.fleet = fleet
        self.out = fleet.tmp / f"{name}.txt"  # /tmp is shared between the lab hosts and the machine
        script = f"ip netns exec pinger ping -n -q -i 0.01 {address} >{self.out} 2>&1 </dev/null & echo $!"
        self.pid = int(fleet.sh("h3", script).split()[-1])

    def stop(self) -> tuple[int, int]:
        """SIGINT, then (transmitted, received) from ping's summary."""
        self.fleet.sh("h3", f"kill -INT {self.pid}")
        deadline = time.monotonic() + 10
        summary = None
        while time.monotonic() < deadline:
            summary = re.search(r"(\d+) packets transmitted, (\d+) received", self.out.read_text(encoding="utf-8"))
            if summary:
                break
            time.sleep(0.1)
        assert summary, f"ping {self.pid} printed no summary: {self.out.read_text(encoding='utf-8')!r}"
        return int(summary[1]), int(summary[2])


def test_each_move_loses_at_most_one_packet_at_100_per_second(fleet, capsys):
    losses = []
    source = "h1"
    for number, target in enumerate(MOVES, 1):
        ping = Ping(fleet, MOVER, f"ping-move-{number}")
        time.sleep(0.5)  # under way before the run starts
        res, changed = play_ok(fleet, mover_on(target))
        time.sleep(0.5)  # the last replies, from the new host
        sent, received = ping.stop()
        losses.append((f"{source}->{target}", sent, sent - received))
        # make-before-break: the new host first, then the third host, then the old host
        order = [line for line in res.stdout.splitlines() if line.startswith("TASK [")]
        passes = [i for i, line in enumerate(order) if "pass 1 of 3" in line or "pass 2 of 3" in line]
        assert len(passes) == 2, order
        assert changed == sorted({source, target, "h3"}), res.stdout[-3000:]
        assert received > 100, (sent, received)
        source = target
    with capsys.disabled():
        print("\nmoves at 100 packets/s: " + "; ".join(f"{m}: {lost} of {sent} lost" for m, sent, lost in losses))
    assert all(lost <= MAX_LOST for _move, _sent, lost in losses), losses
    # the mover answers from its last host, and the old one has no trace of it
    assert "mover" in fleet.sh(MOVES[-1], "ip netns list")
    assert "mover" not in fleet.sh("h1", "ip netns list")


def test_a_run_with_a_move_is_predicted_by_check_and_changes_nothing_when_repeated(fleet):
    play_ok(fleet, mover_on("h2"))
    before = fleet.snapshot()
    res, changed = play_ok(fleet, mover_on("h1"), "--check")
    assert changed == ["h1", "h2", "h3"], res.stdout[-3000:]
    assert "pass 1 of 3" in res.stdout
    assert fleet.snapshot() == before
    play_ok(fleet, mover_on("h1"))
    res, changed = play_ok(fleet, mover_on("h1"))
    assert changed == [], res.stdout[-3000:]
    assert "pass 1 of 3" not in res.stdout  # no move: one pass


def tables(fleet, host: str) -> tuple[dict, list]:
    """A host's ``moves`` network: its static ARP entries ``{ip: mac}`` and every FDB entry (static and learned,
    vxlan0 and br0) as ``(mac, dst or None)``."""
    neigh = json.loads(fleet.sh(host, f"ip -n {NETNS} -j neigh show dev vxlan0 nud permanent") or "[]")
    fdb = json.loads(fleet.sh(host, f"bridge -n {NETNS} -j fdb show") or "[]")
    return {e["dst"]: e.get("lladdr") for e in neigh}, [(e["mac"], e.get("dst")) for e in fdb]


def test_a_reused_address_leaves_no_stale_pair_on_any_host(fleet):
    old = {"name": "old", "network": "moves", "address": REUSED, "mac": OLD_MAC}
    new = {"name": "new", "network": "moves", "address": REUSED, "mac": NEW_MAC}
    play_ok(fleet, overrides({"h1": [old]}))
    assert tables(fleet, "h3")[0][REUSED] == OLD_MAC
    res, changed = play_ok(fleet, overrides({"h2": [new]}))
    assert changed == ["h1", "h2", "h3"], res.stdout[-3000:]
    for host in HOSTS:
        neigh, fdb = tables(fleet, host)
        assert all(mac != OLD_MAC for mac, _dst in fdb), (host, fdb)
        assert OLD_MAC not in neigh.values(), (host, neigh)
        if host != "h2":
            assert neigh[REUSED] == NEW_MAC, (host, neigh)
            assert (NEW_MAC, VTEP["h2"]) in fdb, (host, fdb)
    # and the address answers from its new endpoint
    ping = fleet.lab.exec("h3", "ip", "netns", "exec", "pinger", "ping", "-c", "3", "-i", "0.2", "-W", "1", REUSED)
    assert ping.returncode == 0, ping.stdout + ping.stderr
