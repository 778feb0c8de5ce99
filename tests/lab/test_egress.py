# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Egress (issue 14, docs/egress.md) on the demo fleet: an endpoint reaches an underlay address that is not an
overlay member, masqueraded to its host's underlay address; nothing starts a connection into it from outside;
two egress networks on one host stay apart; turning egress off removes all of it; idempotence and --check.

The outside is the lab's switch (``sw``, 198.18.0.1 on its br0): on the underlay, in no overlay network.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
from lab_helpers import TOOL, needs_root
from reliability_helpers import HOSTS, demo_lab, snapshot_diff
from support.demo_fleet import DEMO, VTEP

pytestmark = [pytest.mark.lab, needs_root]

OUTSIDE = "198.18.0.1"  # the switch: an underlay address of no overlay member
WEB1 = DEMO[("h1", "web1")][1]  # backend (10.214.0.0/24) on h1
WEB2 = DEMO[("h2", "web2")][1]  # backend on h2
HOSTA = DEMO[("h1", "hosta")][1]  # overlay_network (10.213.0.0/24) on h1
NETS = "overlay_networks:\n  - {{name: overlay_network, vni: 256, subnet: 10.213.0.0/24{a}}}\n" \
    "  - {{name: backend, vni: 300, subnet: 10.214.0.0/24{b}}}\n"  # fmt: skip
BACKEND = dict.fromkeys(HOSTS, NETS.format(a="", b=", egress: true"))
BOTH = dict.fromkeys(HOSTS, NETS.format(a=", egress: true", b=", egress: true"))
FORWARDING = "cat /proc/sys/net/ipv4/conf/eth0/forwarding"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    for fleet in demo_lab(tmp_path_factory, "egress"):
        fleet.pristine = fleet.snapshot()
        res = fleet.play("site.yml")[0]
        assert res.returncode == 0, res.stdout[-6000:]
        fleet.plain = fleet.snapshot()  # converged without egress
        yield fleet


def play(fleet, overrides, *args):
    res, recap, changed = fleet.play("site.yml", *args, overrides=overrides)
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]
    return recap, changed


def reaches(fleet, host: str, netns: str, target: str) -> bool:
    return fleet.lab.exec(host, "ip", "netns", "exec", netns, "ping", "-c", "2", "-W", "1", target).returncode == 0


def sw(fleet, *cmd: str) -> subprocess.CompletedProcess:
    return fleet.lab.exec("sw", *cmd)


def background_in_switch(fleet, *cmd: str) -> subprocess.Popen:
    """A command in the lab's switch, running while the test goes on (it ends by itself: ``timeout``)."""
    argv = [sys.executable, str(TOOL), "exec", "--dir", str(fleet.lab.dir), "sw", "--", "timeout", "30", *cmd]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# the bridge ids that br0 and its ports show, made from br0's MAC
_FROM_BRIDGE_MAC = frozenset(("bridge_id", "root_id", "designated_root", "designated_bridge"))


def without_gateway_mac(snap: dict) -> dict:
    """A snapshot without what the gateway leaves on br0 on purpose, its MAC (with the bridge ids made from it and
    br0's own FDB entry), and without nft's handles (a replaced table gets new ones)."""

    def scrub(value):
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items() if k not in _FROM_BRIDGE_MAC}
        return [scrub(v) for v in value] if isinstance(value, list) else value

    def plain(section: str, item):
        if not isinstance(item, dict):
            return item
        if section in ("link", "addr") and item.get("ifname") == "br0":
            item = {k: v for k, v in item.items() if k != "address"}
        if section == "nft":
            return {kind: {k: v for k, v in obj.items() if k != "handle"} for kind, obj in item.items()}
        return scrub(item)

    return {
        host: {
            ns: {
                section: [plain(section, item) for item in items if not (section == "fdb" and item["ifname"] == "br0")]
                for section, items in sections.items()
            }
            for ns, sections in namespaces.items()
        }
        for host, namespaces in snap.items()
    }


def summaries(stdout: str) -> dict:
    """Each host's summary line of the overlay_host task (``h1: ..., egress on (backend)``), check mode's mark off."""
    return {m[1]: m[2].removesuffix(" (check mode)") for m in re.finditer(r"^(h\d+): (.*)$", stdout, re.MULTILINE)}


def test_check_mode_predicts_the_first_egress_run(fleet):
    before = fleet.snapshot()
    res, recap, changed = fleet.play("site.yml", "--check", overrides=BACKEND)
    assert res.returncode == 0, res.stdout[-6000:]
    assert changed == sorted(HOSTS), recap
    assert fleet.snapshot() == before, "check mode changed the kernel"
    predicted = summaries(res.stdout)
    res, recap, changed = fleet.play("site.yml", overrides=BACKEND)
    assert res.returncode == 0, res.stdout[-6000:]
    assert changed == sorted(HOSTS), recap
    assert summaries(res.stdout) == predicted
    assert all(line.endswith("egress on (backend)") for line in predicted.values()), predicted
    recap, changed = play(fleet, BACKEND)
    assert changed == [], f"the second run changed {changed}"
    res, recap, changed = fleet.play("site.yml", "--check", overrides=BACKEND)
    assert changed == [], f"check mode after the run predicts changes on {changed}"


def test_an_egress_endpoint_reaches_the_outside_as_its_host(fleet):
    play(fleet, BACKEND)
    capture = background_in_switch(fleet, "tcpdump", "-lnni", "br0", "-c", "1", f"icmp and dst host {OUTSIDE}")
    try:
        assert any("listening on" in capture.stderr.readline() for _line in range(3)), "tcpdump did not start"
        assert reaches(fleet, "h1", "web1", OUTSIDE), "web1 (backend, egress) does not reach the switch"
        out = capture.communicate(timeout=30)[0]
    finally:
        capture.kill()
    assert f"IP {VTEP['h1']} > {OUTSIDE}: ICMP echo request" in out, out
    # return traffic of a TCP connection, not only ping replies
    server = background_in_switch(fleet, "socat", "TCP-LISTEN:18080,reuseaddr", "SYSTEM:echo egress-ok")
    try:
        time.sleep(1)
        res = fleet.lab.exec("h1", "ip", "netns", "exec", "web1", "socat", "-T5", "-", f"TCP:{OUTSIDE}:18080")
        assert res.stdout.strip() == "egress-ok", res.stderr
    finally:
        server.kill()
        server.communicate()


def test_without_egress_there_is_no_route(fleet):
    play(fleet, BACKEND)
    res = fleet.lab.exec("h1", "ip", "netns", "exec", "hosta", "ip", "route", "get", OUTSIDE)
    assert res.returncode != 0 and "unreachable" in res.stderr, res.stdout + res.stderr
    assert not reaches(fleet, "h1", "hosta", OUTSIDE)


def test_nothing_from_outside_starts_a_connection_into_an_endpoint(fleet):
    play(fleet, BACKEND)
    route = ("ip", "route", "replace", "10.214.0.0/24", "via", VTEP["h1"])
    assert sw(fleet, *route).returncode == 0
    try:
        res = sw(fleet, "ping", "-c", "2", "-W", "1", WEB1)
        assert res.returncode != 0, f"the switch reached web1 through h1:\n{res.stdout}"
    finally:
        sw(fleet, "ip", "route", "del", "10.214.0.0/24")


def test_two_egress_networks_stay_apart(fleet):
    play(fleet, BOTH)
    assert reaches(fleet, "h1", "hosta", OUTSIDE), "hosta (overlay_network, egress) does not reach the switch"
    assert reaches(fleet, "h1", "web1", OUTSIDE)
    assert not reaches(fleet, "h1", "hosta", WEB1), "overlay_network reached backend on the same host"
    assert not reaches(fleet, "h1", "hosta", WEB2), "overlay_network reached backend on another host"
    assert not reaches(fleet, "h1", "web1", HOSTA), "backend reached overlay_network on the same host"
    # an endpoint sends no VXLAN through its egress: it would leave as its host's VTEP
    out = fleet.sh("h1", "nft list chain inet netfleet_overlay egress_forward")
    assert 'iifname "ovg-*" udp dport @egress_ports drop' in out, out


USER_NETNS = """set -e
ip netns add gapp
ip -n gapp link add usr0 type veth peer name usr1
ip -n gapp addr add 192.0.2.9/24 dev usr0
ip -n gapp link set usr0 up
ip -n gapp link set usr1 up
ip -n gapp route add default via 192.0.2.1 dev usr0
"""
GAPP = {
    **BACKEND,
    "h1": BACKEND["h1"] + "overlay_endpoints:\n  - {name: hosta, network: overlay_network}\n"
    "  - {name: web1, network: backend}\n  - {name: gapp, network: backend, netns: gapp, interface: ovl0}\n",
}


def test_a_default_route_of_the_user_is_left_alone_with_a_warning(fleet):
    """An attached netns with a default route of its own: egress adds none there, and the run says so."""
    fleet.sh("h1", USER_NETNS)
    try:
        res = fleet.play("site.yml", overrides=GAPP)[0]
        assert res.returncode == 0, res.stdout[-6000:]
        said = " ".join((res.stdout + res.stderr).split())  # warnings go to stderr
        assert "host h1: endpoint 'gapp' (network 'backend') gets no default route via the gateway" in said, said
        assert "(default via 192.0.2.1 dev usr0)" in said, said
        routes = fleet.sh("h1", "ip -n gapp route show default").strip()
        assert routes == "default via 192.0.2.1 dev usr0", routes
        assert reaches(fleet, "h1", "gapp", WEB1), "the attached endpoint is not on backend"
        play(fleet, BACKEND)  # the endpoint goes; the user's netns and route stay
        assert fleet.sh("h1", "ip -n gapp route show default").strip() == "default via 192.0.2.1 dev usr0"
    finally:
        fleet.sh("h1", "ip netns del gapp", check=False)


def test_egress_off_removes_all_of_it(fleet):
    play(fleet, BOTH)
    assert fleet.sh("h1", FORWARDING).strip() == "1"
    recap, changed = play(fleet, None)
    assert changed == sorted(HOSTS), recap
    after = fleet.snapshot()
    plain, now = without_gateway_mac(fleet.plain), without_gateway_mac(after)
    assert now == plain, "egress off left something behind:\n" + snapshot_diff(plain, now)
    for host in HOSTS:
        assert fleet.sh(host, FORWARDING).strip() == "0", f"{host}: eth0 still forwards"
    assert not reaches(fleet, "h1", "web1", OUTSIDE)
    recap, changed = play(fleet, None)
    assert changed == [], recap


def test_teardown_after_egress_leaves_nothing(fleet):
    play(fleet, BOTH)
    res = fleet.play("teardown.yml")[0]
    assert res.returncode == 0, res.stdout[-4000:]
    after = fleet.snapshot()
    assert after == fleet.pristine, "teardown left residue:\n" + snapshot_diff(fleet.pristine, after)
    for host in HOSTS:
        assert fleet.sh(host, FORWARDING).strip() == "0", f"{host}: eth0 still forwards after teardown"
    # check mode on bare hosts: every namespace, transit and route is predicted, nothing is made
    res, recap, changed = fleet.play("site.yml", "--check", overrides=BOTH)
    assert res.returncode == 0, res.stdout[-6000:]
    assert changed == sorted(HOSTS), recap
    predicted = summaries(res.stdout)
    assert all(line.endswith("egress on (overlay_network, backend)") for line in predicted.values()), predicted
    assert fleet.snapshot() == fleet.pristine, "check mode changed a bare host"
    res = fleet.play("site.yml", overrides=BOTH)[0]
    assert res.returncode == 0, res.stdout[-6000:]
    assert summaries(res.stdout) == predicted
    assert reaches(fleet, "h3", "db", OUTSIDE)
