# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ownership records on the demo fleet (issue 11: never adopt or delete what the collection did not create, honest
reporting; issue 12, finding 2: aliases prove nothing).

- a user's netns ``myapp`` (an address on ``lo``) and an endpoint named ``myapp``: the run fails naming it, on the
  controller and, for hand-written input, on the host; the netns keeps its address;
- aliases forged inside an endpoint netns (the victim: another netns) delete and adopt nothing, with a record and
  on a host that has none (as release 0.1.0 left it); aliases that are not UTF-8 or hold ``/`` give a warning
  naming them, never a traceback;
- a network named with spaces, quotes and ``=`` (what 0.1.0's aliases split on) round-trips through the record:
  its second run changes nothing;
- an apply that fails half-way reports ``changed``, ``commands_done`` and ``not_done``, and the next run repairs.

Kernel snapshots of h1, h2, h3 are taken wherever nothing may change. Results go to
tests/output/reliability/ownership.json.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from lab_helpers import needs_root, run_ansible
from reliability_helpers import HOSTS, check_teardown_leaves_no_residue, fatal_text, lab_fleet, snapshot_diff

pytestmark = [pytest.mark.lab, needs_root]

RECORD = "/run/netfleet-overlay/ownership.json"
ADHOC_RE = re.compile(r"^(\S+) \| (SUCCESS|CHANGED|FAILED!) => (\{.*?^\})", re.MULTILINE | re.DOTALL)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    yield from lab_fleet(tmp_path_factory, "ownership")


def adhoc(fleet, host: str, module: str, args: dict, *extra: str) -> tuple[str, dict, str]:
    """``(status, result, whole output)`` of one ad hoc module run (``extra``: ``--check``, ``--diff``)."""
    arguments = ["-a", json.dumps(args)] if args else []  # "{}" would be a raw parameter
    res = run_ansible(fleet.env, "-i", str(fleet.lab.inventory), host, "-m", module, *arguments, *extra)
    match = ADHOC_RE.search(res.stdout)
    assert match, res.stdout[-3000:] + res.stderr[-3000:]
    assert "Traceback" not in res.stdout + res.stderr, res.stdout + res.stderr
    return match.group(2), json.loads(match.group(3)), res.stdout + res.stderr


def record(fleet, host: str) -> dict:
    return json.loads(fleet.sh(host, f"cat {RECORD}"))


def network(name: str, vni: int, endpoints=(), mtu: int = 1450) -> dict:
    """One network as the plan gives it to overlay_host, with endpoints ``(name, ip)`` on 10.99.<vni>.0/24."""
    return {
        "name": name,
        "vni": vni,
        "port": 4789,
        "mtu": mtu,
        "netns": f"ovl-{vni}",
        "bridge": "br0",
        "vxlan": "vxlan0",
        "endpoints": [
            {
                "name": ep,
                "netns": ep,
                "veth": f"veth-{ep}",
                "address": f"10.99.{vni % 256}.{last}/24",
                "mac": f"02:42:0a:63:{vni % 256:02x}:{last:02x}",
                "mtu": mtu,
            }
            for ep, last in endpoints
        ],
        "neigh": [{"ip": f"10.99.{vni % 256}.77", "mac": "02:42:0a:63:00:4d"}],
        "fdb": [{"mac": "02:42:0a:63:00:4d", "dst": "198.18.1.2"}],
        "peer_hosts": {"198.18.1.2": "h2"},
    }


# --- a namespace the user made ------------------------------------------------------------------------------------

MYAPP = """overlay_endpoints:
  - name: hosta
    network: overlay_network
  - name: web1
    network: backend
  - name: myapp
    network: overlay_network
"""


def test_a_user_netns_is_never_taken_over(fleet):
    started = time.monotonic()
    fleet.sh("h1", "ip netns add myapp && ip -n myapp addr add 192.0.2.1/32 dev lo && ip -n myapp link set lo up")
    try:
        before = fleet.snapshot()
        # through the role: the controller refuses it from the facts (netns listed, not owned)
        res, _recap, changed = fleet.play("site.yml", overrides={"h1": MYAPP})
        assert res.returncode != 0 and changed == [], res.stdout[-4000:]
        fatal = fatal_text(res.stdout)
        assert "myapp" in fatal and "h1" in fatal, fatal
        # by hand: overlay_host itself refuses it before any change
        status, result, _out = adhoc(
            fleet,
            "h1",
            "netfleet.overlay.overlay_host",
            {"vtep": "198.18.1.1", "networks": [network("n", 900, [("myapp", 2)])]},
        )
        assert status == "FAILED!" and result["changed"] is False and result["commands_done"] == [], result
        assert re.search(r"host h1: netns myapp exists but netfleet.overlay did not create it", result["msg"]), result
        assert "nothing was changed" in result["msg"] and "ip netns del myapp" in result["msg"], result["msg"]
        after = fleet.snapshot()
        assert after == before, snapshot_diff(before, after)
        assert "192.0.2.1/32" in fleet.sh("h1", "ip -n myapp -o addr show dev lo")
    finally:
        fleet.sh("h1", "ip netns del myapp", check=False)
    fleet.results.add(
        "guard",
        "user-netns-not-taken-over",
        [
            "site.yml with an endpoint named like the user's netns fails on the controller, naming h1 and myapp",
            "overlay_host with the same endpoint fails before any change, naming the host and the netns",
            "snapshots of h1, h2, h3 identical; myapp keeps its address on lo",
        ],
        True,
        time.monotonic() - started,
        what="an endpoint named like a netns that the user made (ip netns add myapp, an address on lo)",
        guard="no takeover of a netns the collection did not create (overlay_plan from the facts; overlay_host again)",
    )


# --- aliases prove nothing -----------------------------------------------------------------------------------------

PLANT = r"""
ip netns add victim && ip -n victim addr add 192.0.2.9/32 dev lo
# a workload with NET_ADMIN in endpoint netns hostb forges the aliases of 0.1.0
ip -n hostb link add fk0 type veth peer name fk1
ip -n hostb link set fk0 alias 'netfleet.overlay endpoint=x netns=victim'
ip -n hostb link add fkvx type vxlan id 256 dstport 4790 nolearning
ip -n hostb link set fkvx alias 'netfleet.overlay network=overlay_network'
# in the overlay netns: a veth that names victim but whose peer is elsewhere, a non-UTF-8 alias, one with '/'
ip -n ovl-256 link add fk2 type veth peer name fk3 netns hostb
ip -n ovl-256 link set fk2 alias 'netfleet.overlay endpoint=y netns=victim'
ip -n ovl-256 link add bad2 type veth peer name bad2p
ip -n ovl-256 link set bad2 alias 'netfleet.overlay endpoint=a/b netns=../victim'
"""
# `ip -j` prints a non-UTF-8 alias as it is, which the snapshot cannot decode: it exists only between snapshots
NOT_UTF8 = (
    "ip -n ovl-256 link add bad1 type veth peer name bad1p"
    " && ip -n ovl-256 link set bad1 alias \"$(printf 'netfleet.overlay endpoint=\\377\\376 netns=hostb')\""
)
UNPLANT = (
    "ip netns del victim; ip -n hostb link del fk0; ip -n hostb link del fkvx; ip -n ovl-256 link del fk2;"
    " ip -n ovl-256 link del bad1; ip -n ovl-256 link del bad2; true"
)


def test_forged_and_bad_aliases_delete_and_adopt_nothing(fleet):
    started = time.monotonic()
    recap, changed = fleet.converge()[1:]
    assert changed == [], recap
    fleet.sh("h2", PLANT)
    try:
        before = fleet.snapshot()
        recap, changed = fleet.converge()[1:]  # with a record: aliases are never read
        assert changed == [], recap
        after = fleet.snapshot()
        assert after == before, snapshot_diff(before, after)
        assert set(record(fleet, "h2")["endpoints"]) == {"hostb", "web2"}

        # h2 as release 0.1.0 left it (no record): the aliases are read, but only where the collection builds
        fleet.sh("h2", f"rm {RECORD}")
        fleet.sh("h2", NOT_UTF8)
        status, result, out = adhoc(fleet, "h2", "netfleet.overlay.overlay_facts", {})
        assert status == "SUCCESS", out
        facts = result["ansible_facts"]["netfleet_overlay"]
        assert set(facts["endpoints"]) == {"hostb", "web2"}, facts["endpoints"]
        assert set(facts["networks"]) == {"overlay_network", "backend"}
        assert "victim" in facts["netns"] and "hostb" in facts["netns"]
        assert facts["peers"]["overlay_network"] == {"198.18.1.1": None, "198.18.1.3": None}, facts["peers"]
        warnings = " ".join(out.split())
        assert "link bad1 has an alias that is not UTF-8" in warnings, out
        assert "veth bad2 alias 'netfleet.overlay endpoint=a/b netns=../victim': not adopted" in warnings, out
        assert "veth fk2 alias 'netfleet.overlay endpoint=y netns=victim': not adopted: its peer is not" in warnings

        recap, changed = fleet.converge()[1:]  # takes h2 over from its aliases: no kernel change
        assert changed == [], recap
        fleet.sh("h2", "ip -n ovl-256 link del bad1")
        after = fleet.snapshot()
        assert after == before, snapshot_diff(before, after)
        taken = record(fleet, "h2")
        assert set(taken["endpoints"]) == {"hostb", "web2"} and set(taken["networks"]) == {"overlay_network", "backend"}
        assert "192.0.2.9/32" in fleet.sh("h2", "ip -n victim -o addr show dev lo")
    finally:
        fleet.sh("h2", UNPLANT, check=False)
    fleet.results.add(
        "security",
        "forged-aliases",
        [
            "a veth and a vxlan with forged aliases in endpoint netns hostb: a converge changes nothing (snapshots)",
            "without a record: facts adopt only hostb and web2; bad aliases (not UTF-8, '/', a peer elsewhere) are"
            " each named in a warning, no traceback",
            "the converge that takes h2 over changes nothing (snapshots); netns victim keeps its address",
        ],
        True,
        time.monotonic() - started,
        what="forged ownership aliases in an endpoint netns",
        guard="ownership record (overlay_host, overlay_facts)",
        tried=5,
        got_through=0,
    )


# --- honest reporting ----------------------------------------------------------------------------------------------


FATAL_RE = re.compile(r"^fatal: \[h1\]: FAILED! => (\{.*\})$", re.MULTILINE)


def test_a_failed_apply_reports_what_it_did_and_did_not(fleet):
    started = time.monotonic()
    fleet.converge()
    # drift on h1: an ARP entry of overlay_network deleted (repaired first), and in endpoint netns web1 (backend)
    # a bridge called eth0 where the endpoint's veth end was: the kernel refuses the new veth half-way through the run
    fleet.sh(
        "h1",
        "ip -n ovl-256 neigh del 10.213.0.3 dev vxlan0"
        " && ip -n web1 link del eth0 && ip -n web1 link add eth0 type bridge",
    )
    res = fleet.play("site.yml")[0]
    assert res.returncode != 0, res.stdout[-4000:]
    match = FATAL_RE.search(res.stdout)
    assert match, res.stdout[-4000:]
    result = json.loads(match.group(1))
    assert result["changed"] is True, result
    assert [c for c in result["commands_done"] if "10.213.0.3" in c], result["commands_done"]
    assert result["not_done"] == {"remove_endpoints": [], "remove_networks": [], "networks": ["backend"]}, result
    assert "File exists" in result["msg"] and "Not done: converging network(s) backend" in result["msg"], result
    assert re.search(r"^h1: arp \+1 -0$", res.stdout, re.MULTILINE), res.stdout[-4000:]
    assert set(record(fleet, "h1")["endpoints"]) == {"hosta", "web1"}

    fleet.sh("h1", "ip -n web1 link del eth0")  # the user removes that bridge: the next run repairs web1
    res, recap, changed = fleet.play("site.yml")
    assert res.returncode == 0 and changed == ["h1"], res.stdout[-4000:]
    assert re.search(r"^h1: ~1 endpoint \(web1\)$", res.stdout, re.MULTILINE), res.stdout[-4000:]
    before = fleet.snapshot()
    recap, changed = fleet.converge()[1:]
    assert changed == [], recap
    after = fleet.snapshot()
    assert after == before, snapshot_diff(before, after)
    fleet.results.add(
        "mistake",
        "apply-fails-half-way",
        [
            "a run that repaired an ARP entry, then met a bridge called eth0 in endpoint netns web1, fails with the"
            " kernel's message and reports changed=true, the command it applied (commands_done) and not_done (backend)",
            "the summary line is printed for the failed host; the record keeps both endpoints",
            "once that bridge is gone the next run repairs web1 (~1 endpoint); the one after changes nothing",
        ],
        True,
        time.monotonic() - started,
        what="an apply that the kernel refuses half-way",
        guard="honest reporting: changed, commands_done and not_done in the failed result (overlay_host)",
    )


# --- names that 0.1.0's aliases split on ---------------------------------------------------------------------------

HOSTILE = 'my front end "quoted" a=b'


def test_a_hostile_network_name_round_trips(fleet):
    started = time.monotonic()
    check_teardown_leaves_no_residue(fleet, "teardown-before-hostile-name")
    args = {"vtep": "198.18.1.1", "networks": [network(HOSTILE, 901, [("spacey", 2)])]}
    status, result, out = adhoc(fleet, "h1", "netfleet.overlay.overlay_host", args)
    assert status == "CHANGED", out
    assert result["summary"].startswith(f"+1 network ({HOSTILE}), +1 endpoint (spacey)"), result["summary"]
    saved = record(fleet, "h1")
    assert list(saved["networks"]) == [HOSTILE] and saved["endpoints"]["spacey"]["network"] == HOSTILE
    assert saved["peers"] == {HOSTILE: {"198.18.1.2": "h2"}}
    before = fleet.snapshot()
    status, result, out = adhoc(fleet, "h1", "netfleet.overlay.overlay_host", args)
    assert status == "SUCCESS" and result["changed"] is False, out  # 0.1.0 deleted and recreated it here
    assert list(result["ansible_facts"]["netfleet_overlay"]["networks"]) == [HOSTILE]
    after = fleet.snapshot()
    assert after == before, snapshot_diff(before, after)
    # --check --diff names what would go
    status, result, out = adhoc(fleet, "h1", "netfleet.overlay.overlay_host", {"state": "absent"}, "--check", "--diff")
    assert status == "CHANGED" and result["removed"] == {"networks": [HOSTILE], "endpoints": ["spacey"]}, out
    # the callback prints the diff above the result: the removed objects by name, one line each
    assert f"remove endpoint spacey (network {HOSTILE}, netns spacey)\n" in out, out
    assert f"remove network {HOSTILE} (vni 901, netns ovl-901)\n" in out, out
    assert fleet.snapshot() == before
    status, result, out = adhoc(fleet, "h1", "netfleet.overlay.overlay_host", {"state": "absent"})
    assert status == "CHANGED", out
    assert record(fleet, "h1")["networks"] == {}
    after = fleet.snapshot()
    assert after == fleet.pristine, snapshot_diff(fleet.pristine, after)
    fleet.results.add(
        "mistake",
        "hostile-network-name",
        [
            f"overlay_host with network {HOSTILE!r}: the record keeps the name as it is",
            "the second run reports changed=false and changes nothing (snapshots)",
            "--check --diff lists the network and endpoint that state=absent removes, by name",
            "state=absent removes them: h1 back to its snapshot from before the first site.yml",
        ],
        True,
        time.monotonic() - started,
        what="a network named with spaces, quotes and '=' given to overlay_host directly",
        guard="ownership record: names round-trip (overlay_host)",
    )
    fleet.converge()


def test_teardown_leaves_no_residue(fleet):
    check_teardown_leaves_no_residue(fleet, "teardown-after-ownership")
    assert set(HOSTS) == {"h1", "h2", "h3"}
