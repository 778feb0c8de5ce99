# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input fails before any change, with a message that names the field and the value.

All cases run in one playbook between two kernel snapshots, which must be identical.  Each case also runs in
check mode first, which must fail the same way.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

pytestmark = pytest.mark.kernel

LOCAL, D2 = "198.18.7.1", "198.18.7.2"
MAC = "02:42:0a:d5:00:03"


@pytest.fixture
def overlay(lab, nf):
    host = lab.netns("h")
    ovl = lab.netns("o")
    lab.underlay(host, addr_a=f"{LOCAL}/24")
    nf.ip(ovl, "link", "add", "br0", "mtu", "1450", "type", "bridge")
    vxlan = ("type", "vxlan", "id", "256", "dstport", "4789", "local", LOCAL, "dev", "ul0", "nolearning", "proxy")
    nf.ip(host, "link", "add", "vxlan0", *vxlan)
    nf.ip(host, "link", "set", "vxlan0", "netns", ovl)
    nf.ip(ovl, "link", "set", "vxlan0", "master", "br0", "up")
    nf.ip(ovl, "link", "set", "br0", "up")
    return host, ovl


ZERO = "00:00:00:00:00:00"

# cases run in check mode too (they fail only after reading the kernel, where check mode takes another path)
CHECK_TOO = {"fdb-family", "fdb-missing-dev", "vxlan-missing-master", "veth-missing-master", "vxlan-local-not-mine"}


def cases(lab, ovl):
    """``(id, module, args, texts the message must contain)``: each names the field and the value."""
    missing_ns = lab.name("missing")
    vx = {"name": "vxlan1", "netns": ovl, "vni": 300, "local": LOCAL, "dev": "ul0"}
    fdb = {"netns": ovl, "dev": "vxlan0"}
    neigh = {"netns": ovl, "dev": "vxlan0"}
    veth = {"name": "veth-a", "netns": ovl, "master": "br0", "peer_netns": lab.name("ep"), "address": "10.213.0.2/24"}

    def f(*entries):
        return {**fdb, "entries": [dict(zip(("mac", "dst"), e, strict=False)) for e in entries]}

    def n(*entries):
        return {**neigh, "entries": [dict(zip(("ip", "mac"), e, strict=False)) for e in entries]}

    return [
        # malformed MACs and IPs
        ("fdb-mac", "fdb", f(("02:42:0a:d5:00", D2)), ["entries[0].mac: '02:42:0a:d5:00'"]),
        ("neigh-mac", "neigh", n(("10.213.0.3", "02:42:zz:d5:00:03")), ["entries[0].mac: '02:42:zz:d5:00:03'"]),
        ("veth-mac", "veth", {**veth, "mac": "02-42-0a-d5-00"}, ["mac: '02-42-0a-d5-00'"]),
        ("neigh-ip", "neigh", n(("10.213.0.300", MAC)), ["entries[0].ip: '10.213.0.300' is not an IP address"]),
        ("fdb-dst", "fdb", f((MAC, "198.18.7")), ["entries[0].dst: '198.18.7' is not an IP address"]),
        ("vxlan-local", "vxlan", {**vx, "local": "198.18.7.999"}, ["local: '198.18.7.999' is not an IP address"]),
        ("veth-address", "veth", {**veth, "address": "10.213.0.256/24"}, ["address: '10.213.0.256/24'"]),
        # a multicast MAC as a unicast FDB entry
        ("fdb-multicast", "fdb", f(("01:00:5e:00:00:01", D2)), ["entries[0].mac: '01:00:5e:00:00:01'", "multicast"]),
        # VNI and port out of range
        ("vni-0", "vxlan", {**vx, "vni": 0}, ["vni: 0 is outside 1..16777215"]),
        ("vni-2^24", "vxlan", {**vx, "vni": 16777216}, ["vni: 16777216 is outside 1..16777215"]),
        ("port-0", "vxlan", {**vx, "port": 0}, ["port: 0 is outside 1..65535"]),
        ("port-70000", "vxlan", {**vx, "port": 70000}, ["port: 70000 is outside 1..65535"]),
        # interface names: 16 characters, a '/', a space
        ("name-16", "bridge", {"name": "br0123456789abcd", "netns": ovl}, ["name: 'br0123456789abcd'", "15"]),
        ("peer-name-16", "veth", {**veth, "peer_name": "eth0123456789abc"}, ["peer_name: 'eth0123456789abc'"]),
        ("name-slash", "vxlan", {**vx, "name": "vx/1"}, ["name: 'vx/1' is not a valid interface name"]),
        ("name-space", "fdb", {**f((MAC, D2)), "dev": "vx lan0"}, ["dev: 'vx lan0' is not a valid interface name"]),
        # an IPv6 destination on a vxlan device whose local address is IPv4
        ("fdb-family", "fdb", f((MAC, "2001:db8::2")), ["entries[0].dst: 2001:db8::2 is IPv6", f"{LOCAL} is IPv4"]),
        # duplicate keys
        ("neigh-dup", "neigh", n(("10.213.0.3", MAC), ("10.213.0.3", MAC)), ["entries[1]: duplicate key 10.213.0.3"]),
        ("fdb-dup", "fdb", f((MAC, D2), (MAC.upper(), "198.18.7.3")), [f"entries[1]: duplicate key {MAC}"]),
        ("flood-dup", "fdb", f((ZERO, D2), (ZERO, D2)), [f"entries[1]: duplicate key {ZERO} {D2}"]),
        (
            "flood-dup-key-only",
            "fdb",
            {**f((ZERO,), (ZERO,)), "state": "deleted"},
            [f"entries[1]: duplicate key {ZERO} (already given as entries[0])"],
        ),
        # an entry's field that the module does not take (the module's own check: no per-entry suboption spec)
        (
            "neigh-unknown-field",
            "neigh",
            {**neigh, "entries": [{"ip": "10.213.0.3", "lladdr": MAC}]},
            ["entries[0]: unknown key(s) lladdr (an entry takes ip and mac)"],
        ),
        ("fdb-entry-type", "fdb", {**fdb, "entries": [{"mac": MAC, "dst": ["198.18.7.2"]}]}, ["entries[0].dst: ["]),
        # missing namespace, device, underlay device, master bridge
        (
            "bridge-missing-netns",
            "bridge",
            {"name": "br0", "netns": missing_ns},
            [f"netns {missing_ns} does not exist"],
        ),
        ("fdb-missing-netns", "fdb", {**f((MAC, D2)), "netns": missing_ns}, [f"netns {missing_ns} does not exist"]),
        ("vxlan-missing-netns", "vxlan", {**vx, "netns": missing_ns}, [f"netns {missing_ns} does not exist"]),
        ("veth-missing-netns", "veth", {**veth, "netns": missing_ns}, [f"netns {missing_ns} does not exist"]),
        ("fdb-missing-dev", "fdb", {**f((MAC, D2)), "dev": "vxlan9"}, ["dev: device vxlan9 not found", ovl]),
        ("neigh-missing-dev", "neigh", {**n(("10.213.0.3", MAC)), "dev": "vxlan9"}, ["dev: device vxlan9 not found"]),
        ("vxlan-missing-underlay", "vxlan", {**vx, "dev": "ul9"}, ["dev: underlay device ul9 not found"]),
        ("vxlan-missing-master", "vxlan", {**vx, "master": "br9"}, [f"master: bridge br9 not found in netns {ovl}"]),
        ("veth-missing-master", "veth", {**veth, "master": "br9"}, [f"master: bridge br9 not found in netns {ovl}"]),
        ("vxlan-local-not-mine", "vxlan", {**vx, "local": "198.18.9.9"}, ["local: 198.18.9.9 is not an address"]),
    ]


def test_bad_input_fails_before_any_change(overlay, lab, nf):
    host, ovl = overlay
    table = cases(lab, ovl)
    by_case = {row[0]: row[1:] for row in table}  # case -> (module, args, words)
    assert len(by_case) == len(table)
    runs = [(case, check) for case in by_case for check in ((True, False) if case in CHECK_TOO else (False,))]
    watch = (host, ovl, lab.name("missing"), lab.name("ep"))
    tasks = [nf.Snap(watch), *(nf.Call(*by_case[case][:2], check=check) for case, check in runs), nf.Snap(watch)]
    before, *results, after = nf.run_tasks(host, tasks)

    problems = []
    for (case, check), r in zip(runs, results, strict=True):
        mode = "check mode" if check else "apply"
        if not r.get("failed"):
            problems.append(f"{case} ({mode}): did not fail: {r}")
            continue
        msg = r.get("msg", "")
        missing = [w for w in by_case[case][2] if w not in msg]
        if missing:
            problems.append(f"{case} ({mode}): message lacks {missing}: {msg!r}")
        if r.get("commands_done"):
            problems.append(f"{case} ({mode}): commands ran: {r['commands_done']}")
    assert not problems, "\n".join(problems)
    assert after == before, "bad input changed the kernel:\n" + nf.snap_diff(before, after)
    assert after[lab.name("missing")] is None
    assert after[lab.name("ep")] is None, "the endpoint namespace was created despite the bad input"


def _interpreter_without_pyroute2() -> str | None:
    for candidate in ("/usr/bin/python3", shutil.which("python3")):
        if not candidate:
            continue
        proc = subprocess.run([candidate, "-c", "import pyroute2"], capture_output=True, check=False)
        if proc.returncode and b"ModuleNotFoundError" in proc.stderr:
            return candidate
    return None


def test_missing_pyroute2(overlay, nf):
    host, ovl = overlay
    python = _interpreter_without_pyroute2()
    if python is None:
        pytest.skip("every Python on this machine has pyroute2")
    before = nf.Kernel.snapshot(host, ovl)
    r = nf.run_module(host, "bridge", {"name": "br1", "netns": ovl}, interpreter=python)
    assert r.get("failed") is True, r
    assert "pyroute2" in r["msg"]
    assert "Failed to import the required Python library" in r["msg"]
    assert nf.Kernel.snapshot(host, ovl) == before
