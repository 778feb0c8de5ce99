# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Attaching endpoints to a netns of the user's (issue 14, ``netns:``) on the demo fleet.

On h1 the user makes netns ``app1`` with things of their own: an address on ``lo`` (left down), and a veth pair
``usr0``/``ovl9`` with an address and a route. Two endpoints join it on two networks (``app1`` as ``ovl0`` on
overlay_network, ``app1b`` as ``ovl1`` on backend):

- ``--check`` predicts the first run (the same hosts change, with the same diff on h1) and changes nothing; the run
  reaches peers on h2 both ways; a second run changes nothing; the facts say ``attached``;
- renaming ``app1b`` and swapping both endpoints' networks works in one run;
- a missing netns and an interface that already exists fail with messages naming the host, the endpoint, the field
  and the value, on the controller and on the host, and change nothing on any host;
- removing the endpoints leaves ``app1`` exactly as the user had it (its snapshot compared), and so does teardown,
  which leaves every other netns as it was before the first run.
"""

from __future__ import annotations

import json
import re

import pytest
from lab_helpers import needs_root, run_ansible
from reliability_helpers import fatal_text, host_diff, lab_fleet, snapshot_diff

pytestmark = [pytest.mark.lab, needs_root]

USER_SETUP = """set -e
ip netns add app1
ip -n app1 addr add 192.0.2.7/32 dev lo
ip -n app1 link add usr0 type veth peer name ovl9
ip -n app1 addr add 192.0.2.9/24 dev usr0
ip -n app1 link set usr0 up
ip -n app1 link set ovl9 up
ip -n app1 route add 198.51.100.0/24 via 192.0.2.1
"""

DEMO_H1 = """  - name: hosta
    network: overlay_network
  - name: web1
    network: backend
"""


def h1_endpoints(*extra: str) -> dict:
    """Overrides for h1: the demo's endpoints and ``extra`` (YAML list items)."""
    return {"h1": "overlay_endpoints:\n" + DEMO_H1 + "".join(extra)}


def attached(name: str, network: str, interface: str, address: str, netns: str = "app1") -> str:
    return (
        f"  - name: {name}\n    network: {network}\n    netns: {netns}\n    interface: {interface}\n"
        f"    address: {address}\n"
    )


ATTACHED = h1_endpoints(
    attached("app1", "overlay_network", "ovl0", "10.213.0.50"), attached("app1b", "backend", "ovl1", "10.214.0.50")
)
# app1b renamed app1c, and the two endpoints' networks swapped (each keeps its interface)
MOVED = h1_endpoints(
    attached("app1", "backend", "ovl0", "10.214.0.50"), attached("app1c", "overlay_network", "ovl1", "10.213.0.51")
)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    yield from lab_fleet(tmp_path_factory, "attach")


@pytest.fixture(scope="module")
def user_app1(fleet):
    """The user's netns app1 on h1, and its snapshot as the user left it."""
    fleet.sh("h1", USER_SETUP)
    return fleet.snapshot(("h1",))["h1"]["app1"]


def ping(fleet, host: str, netns: str, address: str) -> bool:
    res = fleet.lab.exec(host, "ip", "netns", "exec", netns, "ping", "-n", "-q", "-c", "2", "-i", "0.2", "-W", "2",
                         address)  # fmt: skip
    return res.returncode == 0


def play_ok(fleet, *args: str, overrides: dict):
    res, recap, changed = fleet.play("site.yml", *args, overrides=overrides)
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]
    return res, recap, changed


def h1_diff(stdout: str) -> str:
    """h1's diff of the overlay_host task, from its summary line on, without check mode's mark."""
    text = host_diff(stdout, "h1")
    assert "h1: +2 endpoints (app1, app1b)" in text, text
    return text[text.index("h1: ") :].replace(" (check mode)", "", 1)


def changes_nothing(fleet, before: dict) -> None:
    after = fleet.snapshot()
    assert after == before, snapshot_diff(before, after)


def test_check_predicts_the_first_run_and_the_endpoints_reach_their_peers(fleet, user_app1):
    before = fleet.snapshot()
    check, _recap, predicted = play_ok(fleet, "--check", "--diff", overrides=ATTACHED)
    changes_nothing(fleet, before)
    real, _recap, changed = play_ok(fleet, "--diff", overrides=ATTACHED)
    assert predicted == changed == ["h1", "h2", "h3"], (predicted, changed)
    assert h1_diff(check.stdout) == h1_diff(real.stdout), (
        h1_diff(check.stdout) + "\n-- real --\n" + h1_diff(real.stdout)
    )
    # app1 reaches hostb and web2 on h2 through its two interfaces, and they reach it
    assert ping(fleet, "h1", "app1", "10.213.0.3") and ping(fleet, "h1", "app1", "10.214.0.3")
    assert ping(fleet, "h2", "hostb", "10.213.0.50") and ping(fleet, "h2", "web2", "10.214.0.50")
    # the user's things are still there, lo still down: the collection added only its two interfaces
    app1 = fleet.snapshot(("h1",))["h1"]["app1"]
    links = {link["ifname"]: link for link in app1["link"]}
    assert sorted(links) == ["lo", "ovl0", "ovl1", "ovl9", "usr0"]
    assert "UP" not in links["lo"]["flags"]
    assert [link for link in app1["link"] if link["ifname"] not in ("ovl0", "ovl1")] == user_app1["link"]
    addresses = fleet.sh("h1", "ip -n app1 -o -4 addr show")
    assert re.search(r"ovl0\s+inet 10\.213\.0\.50/24", addresses) and re.search(
        r"ovl1\s+inet 10\.214\.0\.50/24", addresses
    )
    assert "192.0.2.7/32" in addresses and "192.0.2.9/24" in addresses


def test_a_second_run_changes_nothing(fleet, user_app1):
    _res, recap, changed = play_ok(fleet, overrides=ATTACHED)
    assert changed == [] and all(counts["changed"] == 0 for counts in recap.values()), recap


def test_the_record_and_the_facts_say_attached(fleet, user_app1):
    record = json.loads(fleet.sh("h1", "cat /run/netfleet-overlay/ownership.json"))["endpoints"]
    assert record["app1"] == {"network": "overlay_network", "netns": "app1", "veth": "veth-app1", "ifname": "ovl0",
                              "netns_created": False}  # fmt: skip
    assert record["app1b"]["netns_created"] is False and record["hosta"]["netns_created"] is True
    res = run_ansible(fleet.env, "-i", str(fleet.lab.inventory), "h1", "-m", "netfleet.overlay.overlay_facts")
    match = re.search(r"^h1 \| SUCCESS => (\{.*^\})", res.stdout, re.MULTILINE | re.DOTALL)
    assert match, res.stdout[-3000:]
    endpoints = json.loads(match.group(1))["ansible_facts"]["netfleet_overlay"]["endpoints"]
    assert endpoints["app1"]["attached"] is True and endpoints["app1"]["ip"] == "10.213.0.50"
    assert endpoints["app1b"]["attached"] is True and endpoints["hosta"]["attached"] is False


def test_a_renamed_and_moved_attached_endpoint(fleet, user_app1):
    play_ok(fleet, overrides=MOVED)
    out = fleet.sh("h1", "ip -n app1 -o -4 addr show")
    assert re.search(r"ovl0\s+inet 10\.214\.0\.50/24", out) and re.search(r"ovl1\s+inet 10\.213\.0\.51/24", out), out
    assert ping(fleet, "h1", "app1", "10.214.0.3") and ping(fleet, "h1", "app1", "10.213.0.3")
    assert ping(fleet, "h2", "hostb", "10.213.0.51") and not ping(fleet, "h2", "hostb", "10.213.0.50")
    assert "veth-app1b" not in fleet.sh("h1", "ip -n ovl-300 -o link show; ip -n ovl-256 -o link show")
    _res, recap, changed = play_ok(fleet, overrides=MOVED)
    assert changed == [], recap


def test_a_missing_netns_fails_by_name_and_changes_nothing(fleet, user_app1):
    before = fleet.snapshot()
    # the controller sees it in the facts
    res, _recap, changed = fleet.play(
        "site.yml", overrides=h1_endpoints(attached("app1", "overlay_network", "ovl0", "10.213.0.50", netns="nope1"))
    )
    fatal = fatal_text(res.stdout)
    assert res.returncode != 0 and changed == [], res.stdout[-4000:]
    assert "host h1: endpoint 'app1' netns 'nope1' does not exist on the host" in fatal, fatal
    # the host checks it too (hand-written input)
    network = {
        "name": "n",
        "vni": 900,
        "port": 4789,
        "mtu": 1450,
        "netns": "ovl-900",
        "bridge": "br0",
        "vxlan": "vxlan0",
        "endpoints": [{"name": "app9", "netns": "nope1", "attached": True, "ifname": "ovl0", "veth": "veth-app9",
                       "address": "10.99.0.9/24", "mac": "02:42:0a:63:00:09", "mtu": 1450}],
        "neigh": [],
        "fdb": [],
    }  # fmt: skip
    args = json.dumps({"vtep": "198.18.1.1", "networks": [network]})
    for extra in ([], ["--check"]):
        res = run_ansible(fleet.env, "-i", str(fleet.lab.inventory), "h1", "-m", "netfleet.overlay.overlay_host",
                          "-a", args, *extra)  # fmt: skip
        fatal = fatal_text(res.stdout)
        assert "h1 | FAILED!" in fatal and "Traceback" not in res.stdout + res.stderr, res.stdout[-3000:]
        assert "host h1: endpoint 'app9' (network 'n') netns: nope1 does not exist" in fatal, fatal
        assert '"changed": false' in fatal and "nothing was changed" in fatal, fatal
    changes_nothing(fleet, before)


def test_an_interface_that_exists_fails_by_name_and_changes_nothing(fleet, user_app1):
    before = fleet.snapshot()
    taken = h1_endpoints(
        attached("app1", "backend", "ovl9", "10.214.0.50"), attached("app1c", "overlay_network", "ovl1", "10.213.0.51")
    )
    for extra in ([], ["--check"]):
        res, _recap, changed = fleet.play("site.yml", *extra, overrides=taken)
        fatal = fatal_text(res.stdout)
        assert res.returncode != 0 and changed == [], res.stdout[-4000:]
        assert "host h1: endpoint 'app1' (network 'backend') interface: ovl9 already exists in netns app1" in fatal, (
            fatal
        )
        changes_nothing(fleet, before)


def test_removal_leaves_the_users_netns_as_they_had_it(fleet, user_app1):
    play_ok(fleet, overrides=h1_endpoints())
    after = fleet.snapshot(("h1",))["h1"]["app1"]
    assert after == user_app1, snapshot_diff({"h1": {"app1": user_app1}}, {"h1": {"app1": after}})
    # attach again, then tear the whole fleet down: app1 is left as the user had it, everything else as it was
    play_ok(fleet, overrides=MOVED)
    res, _recap, _changed = fleet.play("teardown.yml", overrides=MOVED)
    assert res.returncode == 0, res.stdout[-4000:]
    after = fleet.snapshot()
    assert after["h1"].pop("app1") == user_app1, "teardown changed the user's netns app1"
    assert after == fleet.pristine, snapshot_diff(fleet.pristine, after)
