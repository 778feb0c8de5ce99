# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 12, finding 1: VXLAN injected through any local address of a host, tried on a lab and shown to get nowhere.

The kernel binds VXLAN sockets to the wildcard address and never compares a packet's outer destination with the
device's ``local``, so UDP to the overlay port on *any* address of a host is decapsulated into its overlays. Every
attempt here sends, for each of h1's two networks (VNI 256: endpoint hosta; VNI 300: web1), a VXLAN packet whose
inner frame is an Ethernet broadcast with a made-up ethertype (0x88B5, local experimental) and a unique marker.
A raw socket on each endpoint's ``eth0`` reports the markers that reached it. The senders:

- a local process on h1, unprivileged (``setpriv`` to nobody), to 127.0.0.1, another 127/8 address, ::1, the VTEP
  itself, a second address of h1, the underlay subnet broadcast and the all-hosts multicast group;
- a "container" on h1 with no capabilities (a netns behind a veth, as nobody), to its gateway address on h1;
- a rogue on the underlay (a namespace plugged into the lab's switch, not in the inventory), to h1's VTEP, the
  subnet broadcast, the limited broadcast, h1's second address (routed), 224.0.0.1 and ff02::1.

With ``overlay_firewall: false`` every IPv4 attempt gets through (the reproduction; the IPv6 ones do not, as an
IPv4 VTEP's device opens no IPv6 socket); with the allowlist none does, and the members still reach each other
(ping between endpoints, and a crafted frame from member h2 to h1's VTEP). After ``nft flush ruleset`` on h1,
overlay_facts reports the table missing and the next run restores it.

Every attempt is counted: tests/output/reliability/vxlan_injection.json records, per sender, the attempts tried
and the ones that got through (kind ``security``; must be 0), and how many got through without the allowlist.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time

import pytest
from devenv import ansible_env
from lab_helpers import TOOL, build_lab, needs_root
from reliability_helpers import Fleet, Results

pytestmark = [pytest.mark.lab, needs_root]

PY = "/usr/bin/python3"  # lab hosts share the machine's files; nobody cannot read the repo's venv
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
PORT, COPIES = 4789, 3
ENDPOINTS = {256: "hosta", 300: "web1"}  # h1's endpoints, one per network (inventories/lab)
SECOND = "198.19.7.1"  # a second address of h1, on its underlay interface
GATEWAY, CONTAINER = "198.19.8.1", "198.19.8.2"  # h1's side and the container's side of a veth
ROGUE_NS, ROGUE_ADDR = "nflrogue", "198.18.9.9"
H1, H2 = "198.18.1.1", "198.18.1.2"

# (sender, destination); sender "local" runs on h1 as nobody, "container" in netns nflctr on h1 as nobody,
# "rogue" in netns nflrogue on the switch, "peer" on h2 (a member: the positive control).
VECTORS = (
    ("local", "127.0.0.1"),
    ("local", "127.9.9.9"),
    ("local", "::1"),
    ("local", H1),
    ("local", SECOND),
    ("local", "198.18.255.255"),
    ("local", "224.0.0.1"),
    ("container", GATEWAY),
    ("rogue", H1),
    ("rogue", "198.18.255.255"),
    ("rogue", "255.255.255.255"),
    ("rogue", SECOND),
    ("rogue", "224.0.0.1"),
    ("rogue", "ff02::1%eth0"),
)
PEER = ("peer", H1)
SENDERS = {
    "local": "a local process on h1 as nobody",
    "container": "a container on h1 with no capabilities (through its gateway)",
    "rogue": "a rogue host on the underlay (not in the inventory)",
}

# Sends COPIES VXLAN packets per "destination,vni,marker" argument: an 8-byte VXLAN header and an Ethernet
# broadcast frame, ethertype 0x88B5, whose payload is NFLINJECT <marker>.  Prints {marker: "sent" or the error}.
SEND = r"""
import json, socket, struct, sys
port, copies, out = int(sys.argv[1]), int(sys.argv[2]), {}
for spec in sys.argv[3:]:
    dest, vni, marker = spec.rsplit(",", 2)
    frame = b"\xff" * 6 + bytes.fromhex("02005e10fe01") + struct.pack("!H", 0x88B5)
    frame += (b"NFLINJECT " + marker.encode() + b"\0").ljust(46, b"\0")
    packet = struct.pack("!II", 0x08000000, int(vni) << 8) + frame
    try:
        family, _, _, _, addr = socket.getaddrinfo(dest, port, type=socket.SOCK_DGRAM)[0]
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            for _ in range(copies):
                sock.sendto(packet, addr)
        out[marker] = "sent"
    except OSError as exc:
        out[marker] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""

# On an endpoint's interface: prints "ready", then counts the markers of frames with ethertype 0x88B5 until its
# stdin closes, and prints {marker: frames}.
LISTEN = r"""
import json, os, select, socket, sys
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88B5))
sock.bind((sys.argv[1], 0))
seen = {}
def take(frame):
    body = frame[14:]
    if body.startswith(b"NFLINJECT "):
        marker = body[10:].split(b"\0")[0].decode()
        seen[marker] = seen.get(marker, 0) + 1
print("ready", flush=True)
while True:
    ready = select.select([sock, sys.stdin], [], [])[0]
    if sock in ready:
        take(sock.recv(65535))
    if sys.stdin in ready and not os.read(sys.stdin.fileno(), 4096):
        break
sock.setblocking(False)
while True:
    try:
        take(sock.recv(65535))
    except BlockingIOError:
        break
print(json.dumps(seen), flush=True)
"""


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nfl-inject")
    env = ansible_env(tmp)
    results = Results("vxlan_injection")
    for lab in build_lab(tmp / "lab", 3):
        fleet = Fleet(lab, env, tmp)
        fleet.results = results
        # h1: a second address, and a container netns behind a veth whose h1 end is its gateway
        fleet.sh(
            "h1",
            f"ip addr add {SECOND}/24 dev eth0"
            f" && ip netns add nflctr && ip link add nflgw type veth peer name eth0 netns nflctr"
            f" && ip addr add {GATEWAY}/24 dev nflgw && ip link set nflgw up"
            f" && ip -n nflctr addr add {CONTAINER}/24 dev eth0 && ip -n nflctr link set eth0 up"
            f" && ip -n nflctr link set lo up && ip -n nflctr route add default via {GATEWAY}",
        )
        # the rogue: a namespace inside the switch, on the underlay bridge, routing through h1
        fleet.sh(
            "sw",
            f"ip netns add {ROGUE_NS} && ip link add vnflrogue type veth peer name eth0 netns {ROGUE_NS}"
            f" && ip link set vnflrogue master br0 up && ip -n {ROGUE_NS} addr add {ROGUE_ADDR}/16 dev eth0"
            f" && ip -n {ROGUE_NS} link set eth0 up && ip -n {ROGUE_NS} link set lo up"
            f" && ip -n {ROGUE_NS} route add default via {H1}",  # also the way out for broadcast and multicast
        )
        yield fleet
    results.write()


# --- sending and listening ------------------------------------------------------------------------------------


def sender_argv(sender: str) -> tuple[str, list[str]]:
    """(lab host, command prefix) that runs a Python script as the given sender."""
    return {
        "local": ("h1", [*NOBODY, PY]),
        "container": ("h1", ["ip", "netns", "exec", "nflctr", *NOBODY, PY]),
        "rogue": ("sw", ["ip", "netns", "exec", ROGUE_NS, PY]),
        "peer": ("h2", [PY]),
    }[sender]


def marker(phase: str, vector: tuple[str, str], vni: int) -> str:
    return f"{phase}|{vector[0]}|{vector[1]}|{vni}"


def send(fleet, phase: str, vectors) -> dict:
    """Send every vector to both VNIs; {marker: 'sent' or the error}."""
    sent = {}
    by_sender: dict = {}
    for vector in vectors:
        by_sender.setdefault(vector[0], []).append(vector)
    for sender, group in by_sender.items():
        host, prefix = sender_argv(sender)
        specs = [f"{vector[1]},{vni},{marker(phase, vector, vni)}" for vector in group for vni in ENDPOINTS]
        res = fleet.lab.exec(host, *prefix, "-c", SEND, str(PORT), str(COPIES), *specs)
        assert res.returncode == 0, f"{sender}: the sender failed: {res.stderr}"
        sent.update(json.loads(res.stdout))
    return sent


@contextlib.contextmanager
def listening(fleet):
    """Raw sockets on h1's endpoints for the block; yields a dict filled with {marker: frames} when it ends."""
    procs, seen = [], {}
    try:
        for ns in ENDPOINTS.values():
            cmd = [sys.executable, str(TOOL), "exec", "--dir", str(fleet.lab.dir), "h1", "--"]
            cmd += ["ip", "netns", "exec", ns, PY, "-c", LISTEN, "eth0"]
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            procs.append(proc)
            assert proc.stdout.readline().strip() == b"ready", proc.stderr.read1().decode()
        yield seen
        time.sleep(0.5)  # decapsulation is synchronous; this only covers the last frames' way through the bridge
        for proc in procs:
            out, err = proc.communicate(timeout=30)  # closes stdin: the listener prints what it saw
            assert proc.returncode == 0, err.decode()
            for key, count in json.loads(out).items():
                seen[key] = seen.get(key, 0) + count
    finally:
        for proc in procs:  # only the listeners this test started, by their own handles
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def attack(fleet, phase: str, vectors=VECTORS) -> dict:
    """{vector: (reached, detail)} for each vector: reached is True when a frame of either VNI reached an endpoint."""
    with listening(fleet) as seen:
        sent = send(fleet, phase, vectors)
    out = {}
    for vector in vectors:
        markers = [marker(phase, vector, vni) for vni in ENDPOINTS]
        errors = [sent[m] for m in markers if sent[m] != "sent"]
        frames = sum(seen.get(m, 0) for m in markers)
        out[vector] = (frames > 0, f"{frames} frames; send errors: {errors}" if errors else f"{frames} frames")
    return out


def record(fleet, phase_results: dict, reproduced: dict, started: float) -> list[str]:
    """One security case per sender: attempts tried with the allowlist and those that got through, plus how many
    got through without it.  Returns the attempts that got through, for the assertion."""
    through = []
    for sender, label in SENDERS.items():
        vectors = [vec for vec in VECTORS if vec[0] == sender]
        passed = [vec for vec in vectors if phase_results[vec][0]]
        through += [f"{vec[0]} -> {vec[1]}: {phase_results[vec][1]}" for vec in passed]
        fleet.results.add(
            "security",
            f"VXLAN injection from {label}",
            [f"VNI 256 and 300 to {vec[1]}:{PORT}, no frame on an endpoint" for vec in vectors],
            not passed,
            time.monotonic() - started,
            tried=len(vectors) * len(ENDPOINTS),
            got_through=len(passed) * len(ENDPOINTS),
            got_through_without_guard=sum(reproduced[vec][0] for vec in vectors) * len(ENDPOINTS),
        )
    return through


def facts_firewall(fleet) -> dict:
    """h1's ``firewall`` fact, from overlay_facts."""
    res = fleet.module("h1", "netfleet.overlay.overlay_facts", {"vtep": H1})
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(res.stdout.split("=>", 1)[1])["ansible_facts"]["netfleet_overlay"]["firewall"]


def pings(fleet) -> list[str]:
    """Endpoint to endpoint across hosts, one per network: the members still reach each other."""
    failed = []
    for ns, peer in (("hosta", "10.213.0.3"), ("web1", "10.214.0.3")):
        res = fleet.lab.exec("h1", "ip", "netns", "exec", ns, "ping", "-c", "2", "-W", "2", peer)
        if res.returncode != 0:
            failed.append(f"{ns} -> {peer}: {res.stdout[-300:]}")
    return failed


# --- the tests --------------------------------------------------------------------------------------------------


def test_injection_reaches_endpoints_without_the_allowlist_and_none_with_it(fleet):
    started = time.monotonic()
    fleet.converge("-e", "overlay_firewall=false")
    reproduced = attack(fleet, "off", [*VECTORS, PEER])
    # the reproduction: every IPv4 destination delivers into the overlays (the IPv6 ones find no socket)
    missing = [f"{v[0]} -> {v[1]}: {detail}" for v, (reached, detail) in reproduced.items() if not reached]
    assert missing == ["local -> ::1: 0 frames", "rogue -> ff02::1%eth0: 0 frames"], missing

    _res, _recap, changed = fleet.converge()
    assert changed == ["h1", "h2", "h3"]
    guarded = attack(fleet, "on", [*VECTORS, PEER])
    through = record(fleet, guarded, reproduced, started)
    assert guarded[PEER][0], f"a member's frames must still arrive: {guarded[PEER][1]}"
    assert not pings(fleet)
    assert not through, "\n".join(through)


def test_a_flushed_ruleset_is_reported_and_restored_by_the_next_run(fleet):
    started = time.monotonic()
    _res, _recap, changed = fleet.converge()
    state = facts_firewall(fleet)
    assert state == {"present": True, "intact": True, "vtep": H1, "allow": [H2, "198.18.1.3"], "ports": [PORT]}

    fleet.sh("h1", "nft flush ruleset")  # what a reload of Debian's nftables.service does
    assert facts_firewall(fleet) == {"present": False, "intact": False, "vtep": None, "allow": [], "ports": []}
    flushed = attack(fleet, "flushed", [("local", "127.0.0.1")])
    assert flushed[("local", "127.0.0.1")][0], "with the table flushed, injection works again"

    _res, _recap, changed = fleet.converge()
    assert changed == ["h1"]
    assert facts_firewall(fleet) == state
    restored = attack(fleet, "restored")
    through = [f"{v[0]} -> {v[1]}: {detail}" for v, (reached, detail) in restored.items() if reached]
    fleet.results.add(
        "security",
        "VXLAN injection after `nft flush ruleset`, once the next run restored the allowlist",
        ["overlay_facts reports firewall.present false", "the next run changes h1 only", "no frame on an endpoint"],
        not through,
        time.monotonic() - started,
        tried=len(VECTORS) * len(ENDPOINTS),
        got_through=len(through) * len(ENDPOINTS),
    )
    assert not through, "\n".join(through)
    assert not pings(fleet)
