# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Broadcast, unknown unicast and multicast per network (issue 15, ``flood`` and ``proxy``) on 3 lab hosts.

Two networks with an endpoint on every host: ``overlay_network`` (the one under test) and ``backend`` (always
``flood: true``, its endpoints only listen). In every endpoint a small UDP listener (python, run with ``ip netns
exec`` inside the lab host, stopped by its pid) writes down what it receives: a broadcast to the subnet's broadcast
address, mDNS (224.0.0.251:5353) and a routed group (239.1.2.3). With ``flood`` each of the three sent from ``f1``
(h1) reaches the other two ``overlay_network`` endpoints and no ``backend`` one; with ``flood`` off none crosses
hosts. Every host's flood list (``bridge fdb show`` of vxlan0) is exactly one ``00:00:00:00:00:00`` entry per peer
VTEP of the network, also after a host leaves the network and after it joins again. With ``proxy: false`` vxlan0 is
recreated without the proxy and an ARP request for a peer is answered by the peer itself (seen leaving the peer's
eth0). ``--check`` predicts each change and a second run is changed=0.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from pathlib import Path

import pytest
from lab_helpers import needs_root
from reliability_helpers import HOSTS, demo_lab
from support.demo_fleet import VTEP

pytestmark = [pytest.mark.lab, needs_root]

FRONT = {"h1": ("f1", "10.213.0.11"), "h2": ("f2", "10.213.0.12"), "h3": ("f3", "10.213.0.13")}
BACK = {"h1": ("b1", "10.214.0.21"), "h2": ("b2", "10.214.0.22"), "h3": ("b3", "10.214.0.23")}
GROUPS = {"bcast": ("10.213.0.255", 5001), "mdns": ("224.0.0.251", 5353), "group": ("239.1.2.3", 5002)}

# One listener per endpoint: a socket per kind (broadcast to any address of its port; each group joined on eth0),
# every datagram written as "<payload> <kind> <source>" to the file given.
LISTENER = r"""
import select, socket, sys
out, me = open(sys.argv[1], "a", buffering=1), sys.argv[2]
kinds = {}
for kind, group, port in (("bcast", "", 5001), ("mdns", "224.0.0.251", 5353), ("group", "239.1.2.3", 5002)):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((group, port))
    if group:
        mreq = socket.inet_aton(group) + socket.inet_aton(me)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    kinds[s] = kind
out.write("ready\n")
while True:
    for s in select.select(list(kinds), [], [])[0]:
        data, src = s.recvfrom(2048)
        out.write(f"{data.decode()} {kinds[s]} {src[0]}\n")
"""
# Three rounds of the three kinds from one address, with a tag; multicast leaves by eth0 and is not looped back.
SENDER = r"""
import socket, sys, time
me, tag, targets = sys.argv[1], sys.argv[2], sys.argv[3:]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(me))
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
s.bind((me, 0))
for _ in range(3):
    for target in targets:
        kind, address, port = target.split(",")
        s.sendto(tag.encode(), (address, int(port)))
    time.sleep(0.2)
"""
# ARP seen on one interface: "<op> <in|out> <sender ip> <target ip>" per packet, to the file given.
ARP_WATCH = r"""
import socket, sys
out = open(sys.argv[1], "a", buffering=1)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))  # ETH_P_ALL: what leaves too
s.bind(("eth0", 0))
out.write("ready\n")
while True:
    data, addr = s.recvfrom(2048)
    if data[12:14] != b"\x08\x06":
        continue
    op = {1: "request", 2: "reply"}.get(int.from_bytes(data[20:22], "big"), "other")
    way = "out" if addr[2] == socket.PACKET_OUTGOING else "in"
    out.write(f"{op} {way} {socket.inet_ntoa(data[28:32])} {socket.inet_ntoa(data[38:42])}\n")
"""

# ping at 100 packets a second until SIGTERM, then its statistics (ping writes them on SIGINT) to the file given.
PINGER = r"""
import signal, subprocess, sys
out = open(sys.argv[1], "a", buffering=1)
ping = subprocess.Popen(["ping", "-n", "-q", "-i", "0.01", sys.argv[2]], stdout=out, stderr=out)
signal.signal(signal.SIGTERM, lambda *_: ping.send_signal(signal.SIGINT))
out.write("ready\n")
ping.wait()
"""


def overrides(flood: bool = True, proxy: bool = True, front: dict | None = None) -> dict:
    """host_vars of each host (JSON, which is YAML): both networks, and its overlay_network and backend endpoints."""
    networks = [
        {"name": "overlay_network", "vni": 256, "subnet": "10.213.0.0/24", "flood": flood, "proxy": proxy},
        {"name": "backend", "vni": 300, "subnet": "10.214.0.0/24", "flood": True},
    ]
    front = FRONT if front is None else front
    out = {}
    for host in HOSTS:
        eps = [(*front[host], "overlay_network")] if host in front else []
        eps.append((*BACK[host], "backend"))
        endpoints = [{"name": name, "network": net, "address": address} for name, address, net in eps]
        out[host] = json.dumps({"overlay_networks": networks, "overlay_endpoints": endpoints})
    return out


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    for fleet in demo_lab(tmp_path_factory, "flood"):
        fleet.started = []  # (host, pid) of every process the test started in a lab host
        fleet.outputs = itertools.count()  # numbers each started process's output file
        yield fleet
        for host, pid in fleet.started:  # normally stopped by the test; a failed one leaves them here
            fleet.lab.exec(host, "kill", str(pid))


def play_ok(fleet, *args: str, **kwargs):
    res, recap, changed = fleet.play("site.yml", *args, overrides=overrides(**kwargs))
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]
    return res, recap, changed


def start(fleet, host: str, netns: str, script: str, *args: str) -> tuple[str, int, str]:
    """Start ``script`` with python3 in ``netns`` of ``host``, in the background; wait until it is ready."""
    out = fleet.tmp / f"{host}-{netns}-{next(fleet.outputs)}.out"
    line = 'ip netns exec "$1" python3 -c "$2" "$3" "${@:4}" >>"$3.log" 2>&1 </dev/null & echo $!'
    res = fleet.lab.exec(host, "bash", "-c", line, "bash", netns, script, str(out), *args)
    assert res.returncode == 0, res.stderr
    pid = int(res.stdout.strip())
    fleet.started.append((host, pid))
    deadline = time.monotonic() + 10
    while not (out.exists() and "ready" in out.read_text()):
        assert time.monotonic() < deadline, f"{host}/{netns}: not ready: {out.with_suffix('.out.log')}"
        time.sleep(0.1)
    return host, pid, str(out)


def stop(fleet, proc: tuple[str, int, str]) -> list[str]:
    """Stop one started process by its pid; what it wrote, without its ready line."""
    host, pid, out = proc
    res = fleet.lab.exec(host, "kill", str(pid))
    assert res.returncode == 0, res.stderr
    fleet.started.remove((host, pid))
    with open(out, encoding="utf-8") as f:
        return [line.split() for line in f.read().splitlines() if line != "ready"]


def send_all(fleet, tag: str) -> dict:
    """Listen in every endpoint, send every kind from f1 (h1), and return ``{endpoint: {kind, ...}}`` received."""
    listeners = {
        name: start(fleet, host, name, LISTENER, address)
        for host in HOSTS
        for name, address in (FRONT[host], BACK[host])
    }
    try:
        targets = [f"{kind},{address},{port}" for kind, (address, port) in GROUPS.items()]
        res = fleet.lab.exec("h1", "ip", "netns", "exec", "f1", "python3", "-c", SENDER, FRONT["h1"][1], tag, *targets)
        assert res.returncode == 0, res.stderr
        time.sleep(0.5)
    finally:
        got = {name: stop(fleet, proc) for name, proc in listeners.items()}
    return {name: {kind for payload, kind, _src in lines if payload == tag} for name, lines in got.items()}


def flood_lists(fleet, vni: int) -> dict:
    """``{host: sorted dst of vxlan0's 00:00:00:00:00:00 entries}`` in ovl-<vni> (None: no such netns)."""
    out = {}
    for host in HOSTS:
        res = fleet.lab.exec(host, "bridge", "-n", f"ovl-{vni}", "-j", "fdb", "show", "dev", "vxlan0")
        entries = json.loads(res.stdout) if res.returncode == 0 else None
        out[host] = None if entries is None else sorted(e["dst"] for e in entries if e["mac"] == "00:00:00:00:00:00")
    return out


def peers(hosts) -> dict:
    return {host: sorted(VTEP[h] for h in hosts if h != host) for host in hosts}


def vxlan_proxy(fleet, host: str) -> bool:
    link = json.loads(fleet.sh(host, "ip -n ovl-256 -j -d link show vxlan0"))[0]
    return bool(link["linkinfo"]["info_data"].get("proxy"))


def test_check_predicts_the_first_run_and_each_host_floods_to_its_peers(fleet):
    before = fleet.snapshot()
    _check, _recap, predicted = play_ok(fleet, "--check")
    assert fleet.snapshot() == before, "check mode changed the kernel"
    _res, _recap, changed = play_ok(fleet)
    assert predicted == changed == list(HOSTS), (predicted, changed)
    assert flood_lists(fleet, 256) == flood_lists(fleet, 300) == peers(HOSTS)
    _res, recap, changed = play_ok(fleet)
    assert changed == [] and all(counts["changed"] == 0 for counts in recap.values()), recap


def test_broadcast_mdns_and_a_group_reach_every_member_and_no_other_network(fleet):
    got = send_all(fleet, "flood-on")
    everything = set(GROUPS)
    assert {name: got[name] for name in ("f2", "f3")} == {"f2": everything, "f3": everything}, got
    assert all(not got[name] for name, _address in BACK.values()), got


def test_proxy_false_recreates_vxlan0_and_the_peer_answers_arp_itself(fleet):
    before = fleet.snapshot()
    _check, _recap, predicted = play_ok(fleet, "--check", proxy=False)
    assert fleet.snapshot() == before, "check mode changed the kernel"
    pinger = start(fleet, "h1", "f1", PINGER, FRONT["h2"][1])  # across hosts, through the switch
    res, _recap, changed = play_ok(fleet, proxy=False)
    stop(fleet, pinger)
    assert predicted == changed == list(HOSTS), (predicted, changed)
    assert not any(vxlan_proxy(fleet, host) for host in HOSTS)
    deadline = time.monotonic() + 5
    while "received" not in (stats := Path(pinger[2]).read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    sent, received = (int(n) for n in re.search(r"(\d+) packets transmitted, (\d+) received", stats).groups())
    # the outage of a proxy switch: vxlan0 deleted, made again and refilled, on h1 and h2 (docs/guide.md)
    print(f"proxy switch: {sent - received} of {sent} pings lost at 100/s ({(sent - received) * 10} ms)")
    assert received > 0 and sent - received < 100, stats
    assert flood_lists(fleet, 256) == peers(HOSTS), "the recreated vxlan0's flood list was not refilled"
    fdb = json.loads(fleet.sh("h1", "bridge -n ovl-256 -j fdb show dev vxlan0"))
    # vxlan0's own entry for f2 (the bridge's learned one on its port vxlan0 has no dst)
    assert [e["dst"] for e in fdb if e["mac"] == "02:42:0a:d5:00:0c" and "dst" in e] == [VTEP["h2"]], fdb
    for host in HOSTS:
        line = next(line for line in res.stdout.splitlines() if line.startswith(f"{host}: "))
        assert "~1 network (overlay_network)" in line, line
    _res, recap, changed = play_ok(fleet, proxy=False)
    assert changed == [], recap
    for host, name in (("h1", "f1"), ("h2", "f2")):
        fleet.sh(host, f"ip -n {name} neigh flush dev eth0")
    watch = start(fleet, "h2", "f2", ARP_WATCH)
    ping = fleet.lab.exec("h1", "ip", "netns", "exec", "f1", "ping", "-c", "2", "-W", "2", FRONT["h2"][1])
    time.sleep(0.3)
    seen = stop(fleet, watch)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    f1, f2 = FRONT["h1"][1], FRONT["h2"][1]
    assert ["request", "in", f1, f2] in seen, seen  # the request was flooded to h2
    assert ["reply", "out", f2, f1] in seen, seen  # and f2 answered it itself
    neigh = fleet.sh("h1", f"ip -n f1 neigh show {f2}")
    assert "02:42:0a:d5:00:0c" in neigh, neigh
    assert send_all(fleet, "proxy-off")["f3"] == set(GROUPS)


def test_the_flood_list_follows_a_host_that_leaves_and_joins(fleet):
    front = {host: ep for host, ep in FRONT.items() if host != "h3"}
    _check, _recap, predicted = play_ok(fleet, "--check", proxy=False, front=front)
    _res, _recap, changed = play_ok(fleet, proxy=False, front=front)
    assert predicted == changed == list(HOSTS), (predicted, changed)
    assert flood_lists(fleet, 256) == {**peers(("h1", "h2")), "h3": None}
    assert flood_lists(fleet, 300) == peers(HOSTS)
    _res, _recap, changed = play_ok(fleet, proxy=False)
    assert changed == list(HOSTS), changed
    assert flood_lists(fleet, 256) == peers(HOSTS)
    _res, recap, changed = play_ok(fleet, proxy=False)
    assert changed == [], recap


def test_with_flood_off_nothing_crosses_hosts(fleet):
    _check, _recap, predicted = play_ok(fleet, "--check", flood=False)
    _res, _recap, changed = play_ok(fleet, flood=False)
    assert predicted == changed == list(HOSTS), (predicted, changed)
    assert flood_lists(fleet, 256) == {host: [] for host in HOSTS}
    assert vxlan_proxy(fleet, "h1"), "proxy true again: vxlan0 recreated with it"
    got = send_all(fleet, "flood-off")
    assert all(not got[name] for name in ("f2", "f3", "b1", "b2", "b3")), got
    _res, recap, changed = play_ok(fleet, flood=False)
    assert changed == [], recap
