# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input on a converged 3-host fleet: every case fails with a message naming the field, the host and the
value, and changes nothing on any host.

The demo fleet (inventories/lab) is converged first. Then every case runs alone, between two kernel snapshots of
all three hosts (links, addresses, routes, static neighbours and FDB entries, UDP sockets and the nft ruleset of
every namespace), which must be identical. Role and inventory cases run playbooks/site.yml with a bad variable
(host_vars in a third inventory source, or extra vars for the fleet-wide overlay_networks); module cases run one
module ad hoc on h1. Last, teardown.yml must bring every host back to its snapshot from before the first site.yml.

For a fleet-wide variable (overlay_networks, overlay_fleet_group) there is no single culprit host: the host named
is the one Ansible reports the failure on.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import pytest
from lab_helpers import needs_root
from reliability_helpers import check_teardown_leaves_no_residue, fatal_text, lab_fleet, snapshot_diff
from support.fleet_data import H1_NET, ep

pytestmark = [pytest.mark.lab, needs_root]

NETS = [
    {"name": "overlay_network", "vni": 256, "subnet": "10.213.0.0/24"},
    {"name": "backend", "vni": 300, "subnet": "10.214.0.0/24"},
]
V6NET = {"name": "v6net", "vni": 600, "subnet": "fd00:600::/64"}
FDB = {"netns": "ovl-256", "dev": "vxlan0", "state": "overridden"}
VX = {"name": "vxtest", "netns": "ovl-256", "vni": 700, "local": "198.18.1.1", "dev": "eth0"}


def eps(*items) -> str:
    """A host_vars file that sets overlay_endpoints (JSON is YAML)."""
    return f"overlay_endpoints: {json.dumps(list(items))}\n"


def nets(*changes, extra=()) -> dict:
    """Extra vars with the demo's overlay_networks, each network updated by ``changes`` (by index)."""
    networks = [dict(n) for n in NETS]
    for index, update in changes:
        networks[index].update(update)
    return {"overlay_networks": networks + list(extra)}


@dataclass
class Case:
    id: str
    kind: str  # "role variable", "inventory" or "module"
    what: str
    words: list[str]  # the field, the host and the value, as the failure message must show them
    overrides: dict | None = None  # host -> host_vars YAML
    extra: dict | None = None  # extra vars
    module: tuple | None = None  # (host, module, args)
    setup: tuple | None = None  # (host, shell before the first snapshot, shell after the last one)
    checks: list[str] = field(default_factory=list)


def role(id_, what, words, *, overrides=None, extra=None, setup=None, kind="role variable"):
    return Case(id_, kind, what, words, overrides=overrides, extra=extra, setup=setup)


def inventory(id_, what, words, **kwargs):
    return role(id_, what, words, kind="inventory", **kwargs)


def host_vars(id_, what, host, text, *words, kind="role variable"):
    """A case whose ``host`` gets the host_vars YAML ``text``."""
    return role(id_, what, list(words), overrides={host: text}, kind=kind)


def extra_vars(id_, what, extra, *words, kind="role variable"):
    """A case run with the extra vars ``extra``."""
    return role(id_, what, list(words), extra=extra, kind=kind)


def on_hosta_and_hostb(id_, what, words, **key):
    """A role case where hosta (on h1) and hostb (on h2) both get ``key``."""
    overrides = {
        "h1": eps(ep("hosta", **key), ep("web1", "backend")),
        "h2": eps(ep("hostb", **key), ep("web2", "backend")),
    }
    return role(id_, what, words, overrides=overrides)


def changed_network(id_, what, index, change, *words):
    """A role case that changes the demo's network ``index`` (extra vars); h1 reports it."""
    return role(id_, what, ["fatal: [h1]", *words], extra=nets((index, change)))


def added_network(id_, what, network, *words):
    """A role case that adds ``network`` to the demo's (extra vars); h1 reports it."""
    return role(id_, what, ["fatal: [h1]", *words], extra=nets(extra=[network]))


def module(id_, what, words, name, args, *, host="h1"):
    return Case(id_, "module", what, [f"{host} | FAILED", *words], module=(host, name, args))


CASES = [
    # --- fleet-wide overlay_networks ------------------------------------------------------------------------
    added_network(
        "networks-same-vni",
        "overlapping networks with the same VNI",
        {"name": "overlap", "vni": 256, "subnet": "10.213.0.0/25"},
        "networks 'overlay_network' and 'overlap' both use vni 256",
    ),
    added_network(
        "networks-ipv6-mtu",
        "MTU 1200 on an IPv6 overlay",
        {**V6NET, "mtu": 1200},
        "network 'v6net' mtu 1200 is below 1280",
    ),
    extra_vars(
        "networks-string",
        "overlay_networks given as a string",
        {"overlay_networks": "overlay_network"},
        "fatal: [h1]",
        "fatal: [h3]",
        "option 'overlay_networks' is of type str",
    ),
    changed_network(
        "networks-unknown-key",
        "an unknown key in a network",
        0,
        {"colour": "blue"},
        "network 'overlay_network': unknown key 'colour'",
    ),
    changed_network("networks-vni-0", "vni 0", 0, {"vni": 0}, "network 'overlay_network' vni 0 is outside 1..16777215"),
    changed_network(
        "networks-vni-text", "vni 'abc'", 0, {"vni": "abc"}, "network 'overlay_network' vni 'abc' is not an integer"
    ),
    changed_network(
        "networks-port", "port 70000", 0, {"port": 70000}, "network 'overlay_network' port 70000 is outside 1..65535"
    ),
    changed_network(
        "networks-subnet-too-small",
        "a /31 subnet",
        1,
        {"subnet": "10.214.0.0/31"},
        "network 'backend' subnet 10.214.0.0/31 is too small",
    ),
    changed_network(
        "networks-subnet-full",
        "4 endpoints on a /30 (room for 1)",
        0,
        {"subnet": "10.213.0.0/30"},
        "network 'overlay_network' subnet 10.213.0.0/30 has room for 1",
        "4 endpoints",
    ),
    added_network(
        "networks-duplicate-name",
        "two networks named backend",
        {"name": "backend", "vni": 400, "subnet": "10.240.0.0/24"},
        "network name 'backend' is used twice",
    ),
    # --- per-host overlay_endpoints, overlay_state -----------------------------------------------------------
    role(
        "endpoint-duplicate-name",
        "duplicate endpoint names on a host",
        ["host h1", "endpoint name 'hosta' is used twice"],
        overrides={"h1": eps(ep("hosta"), ep("hosta", "backend"))},
    ),
    on_hosta_and_hostb(
        "endpoint-same-ip-two-hosts",
        "the same IP on two hosts",
        ["endpoints h1/hosta and h2/hostb", "address 10.213.0.9"],
        address="10.213.0.9",
    ),
    role(
        "endpoint-outside-subnet",
        "an endpoint address outside its subnet",
        ["host h3: endpoint 'hostc' address 10.99.0.4 is outside network 'overlay_network' subnet 10.213.0.0/24"],
        overrides={"h3": eps(ep("hostc", address="10.99.0.4"), ep("hostd"), ep("db", "backend"))},
    ),
    role(
        "endpoint-ipv6-mtu",
        "an endpoint MTU 1000 on an IPv6 overlay",
        ["host h1: endpoint 'v6ep' mtu 1000 is below 1280"],
        extra=nets(extra=[V6NET]),
        overrides={"h1": eps(ep("hosta"), ep("web1", "backend"), ep("v6ep", "v6net", mtu=1000))},
    ),
    role(
        "endpoint-unknown-network",
        "an endpoint on an unknown network",
        ["host h1: endpoint 'hosta' network 'nosuch' is not defined in overlay_networks"],
        overrides={"h1": eps(ep("hosta", "nosuch"), ep("web1", "backend"))},
    ),
    on_hosta_and_hostb(
        "endpoint-duplicate-mac",
        "the same MAC on two hosts",
        ["endpoints h1/hosta and h2/hostb both have mac 02:42:0a:d5:00:63"],
        mac="02:42:0a:d5:00:63",
    ),
    role(
        "endpoint-address-collision",
        "two explicit addresses colliding on one host",
        ["endpoints h3/hostc and h3/hostd both have address 10.213.0.20"],
        overrides={"h3": eps(ep("hostc", address="10.213.0.20"), ep("hostd", address="10.213.0.20"))},
    ),
    role(
        "endpoint-gateway-address",
        "the subnet's gateway as an explicit address",
        ["host h1: endpoint 'hosta' address 10.213.0.1 is the gateway address"],
        overrides={"h1": eps(ep("hosta", address="10.213.0.1"), ep("web1", "backend"))},
    ),
    role(
        "endpoints-dict",
        "overlay_endpoints given as a dict",
        ["fatal: [h1]", "host h1: endpoints must be a list, got dict"],
        overrides={"h1": f"overlay_endpoints: {json.dumps(ep('hosta'))}\n"},
    ),
    role(
        "endpoint-invalid-name",
        "an endpoint name with a '/'",
        ["host h2: endpoints[0] name 'bad/name' is not a valid endpoint name"],
        overrides={"h2": eps(ep("bad/name"), ep("web2", "backend"))},
    ),
    role(
        "endpoint-bad-mac",
        "a malformed MAC",
        ["host h3: endpoint 'hostc' mac '02:42:zz:00:00:04' is not a MAC address"],
        overrides={"h3": eps(ep("hostc", mac="02:42:zz:00:00:04"), ep("hostd"), ep("db", "backend"))},
    ),
    role(
        "endpoint-mtu-above-network",
        "an endpoint MTU above its network's",
        ["host h1: endpoint 'hosta' mtu 9000 exceeds network 'overlay_network' mtu 1450"],
        overrides={"h1": eps(ep("hosta", mtu=9000), ep("web1", "backend"))},
    ),
    role(
        "endpoint-unknown-key",
        "an unknown key in an endpoint",
        ["fatal: [h1]", "host h3: endpoint 'hostc': unknown key 'ip'"],
        overrides={"h3": eps(ep("hostc", ip="10.213.0.4"), ep("hostd"), ep("db", "backend"))},
    ),
    host_vars(
        "state-bad",
        "overlay_state: gone",
        "h2",
        "overlay_state: gone\n",
        "fatal: [h2]",
        "overlay_state must be one of: present, absent, got: gone",
    ),
    # --- the guards of issue 11: unknown names, the purge guard, values that the hosts would refuse -----------
    host_vars(
        "var-endpoint-singular",
        "overlay_endpoint: (singular) in a host's vars",
        "h2",
        "overlay_endpoint: [{name: hostb, network: overlay_network}]\n",
        "fatal: [h1]",
        "host h2: unknown variable overlay_endpoint",
        "did you mean overlay_endpoints?",
    ),
    extra_vars(
        "var-networks-typo",
        "overlay_netwroks as an extra var",
        {"overlay_netwroks": []},
        "fatal: [h1]",
        "host h1: unknown variable overlay_netwroks",
        "did you mean overlay_networks?",
    ),
    host_vars(
        "var-state-typo",
        "overlay_stat: absent in a host's vars",
        "h3",
        "overlay_stat: absent\n",
        "host h3: unknown variable overlay_stat",
        "did you mean overlay_state?",
    ),
    host_vars(
        "var-firewall-typo",
        "overlay_firewal: false in a host's vars",
        "h2",
        "overlay_firewal: false\n",
        "host h2: unknown variable overlay_firewal",
        "did you mean overlay_firewall?",
    ),
    changed_network(
        "network-key-typo",
        "a misspelt key in a network (sbunet)",
        1,
        {"sbunet": "10.214.0.0/24"},
        "network 'backend': unknown key 'sbunet'",
        "did you mean 'subnet'?",
    ),
    role(
        "endpoint-key-netwrok",
        "netwrok: in an endpoint",
        ["host h3: endpoint 'hostc': unknown key 'netwrok'", "did you mean 'network'?"],
        overrides={"h3": eps({"name": "hostc", "netwrok": "overlay_network"}, ep("hostd"), ep("db", "backend"))},
    ),
    added_network(
        "network-name-spaces",
        "a network named 'my front end'",
        {"name": "my front end", "vni": 400, "subnet": "10.215.0.0/24"},
        "overlay_networks[2] name 'my front end' is not a valid network name",
        "'my_front_end'",
    ),
    added_network(
        "network-name-equals",
        "a network named 'env=prod'",
        {"name": "env=prod", "vni": 400, "subnet": "10.215.0.0/24"},
        "overlay_networks[2] name 'env=prod' is not a valid network name",
        "'env_prod'",
    ),
    role(
        "endpoint-name-spaces",
        "an endpoint named 'my app'",
        ["host h1: endpoints[2] name 'my app' is not a valid endpoint name", "'my_app'"],
        overrides={"h1": eps(ep("hosta"), ep("web1", "backend"), ep("my app"))},
    ),
    role(
        "network-mtu-9000",
        "a network mtu 9000 on a 1500 underlay",
        ["host h1: network 'backend' mtu 9000 does not fit", "underlay_mtu 1500", "at most 1450"],
        extra=nets((1, {"mtu": 9000})),
    ),
    role(
        "network-mtu-1451",
        "a network mtu one byte above what the underlay allows",
        ["host h1: network 'overlay_network' mtu 1451 does not fit", "at most 1450"],
        extra=nets((0, {"mtu": 1451})),
    ),
    added_network(
        "networks-overlap-nested",
        "a /16 network around a /24 one",
        {"name": "wide", "vni": 400, "subnet": "10.213.0.0/16"},
        "networks 'overlay_network' (subnet 10.213.0.0/24) and 'wide' (subnet 10.213.0.0/16) overlap",
    ),
    changed_network(
        "networks-overlap-same",
        "two networks with the same subnet",
        1,
        {"subnet": "10.213.0.0/24"},
        "networks 'overlay_network' (subnet 10.213.0.0/24) and 'backend' (subnet 10.213.0.0/24)",
    ),
    host_vars(
        "purge-emptied-host",
        "a host whose overlay_endpoints is emptied",
        "h3",
        "overlay_endpoints: []\n",
        "fatal: [h1]",
        "whole overlay of host h3",
        "endpoints db, hostc, hostd",
        "overlay_allow_purge=true",
    ),
    role(
        "purge-over-limit",
        "2 endpoints removed with overlay_purge_limit 1",
        ["would remove 2 endpoints, more than overlay_purge_limit (1)", "h1: endpoints web1", "h2: endpoints web2"],
        extra={"overlay_purge_limit": 1},
        overrides={"h1": eps(ep("hosta")), "h2": eps(ep("hostb"))},
    ),
    role(
        "purge-limit-zero",
        "1 endpoint removed with overlay_purge_limit 0",
        ["would remove 1 endpoint, more than overlay_purge_limit (0)", "h3: endpoints hostd"],
        extra={"overlay_purge_limit": 0},
        overrides={"h3": eps(ep("hostc"), ep("db", "backend", address="10.214.0.10"))},
    ),
    extra_vars(
        "purge-limit-negative",
        "overlay_purge_limit -1",
        {"overlay_purge_limit": -1},
        "fatal: [h1]",
        "overlay_purge_limit -1 is outside 0..2147483647",
    ),
    extra_vars(
        "allow-purge-text",
        "overlay_allow_purge: maybe",
        {"overlay_allow_purge": "maybe"},
        "fatal: [h1]",
        "overlay_allow_purge",
        "maybe",
    ),
    role(
        "netns-takeover",
        "an endpoint named like a netns that the user made",
        ["host h1: endpoint 'myapp' would take over netns 'myapp'", "Rename the endpoint", "ip netns del myapp"],
        overrides={"h1": eps(ep("hosta"), ep("web1", "backend"), ep("myapp", "backend"))},
        setup=("h1", "ip netns add myapp && ip -n myapp addr add 10.99.0.1/32 dev lo", "ip netns del myapp"),
    ),
    # --- the inventory and the hosts ------------------------------------------------------------------------
    host_vars(
        "vtep-not-local",
        "a VTEP that is not an address of the host",
        "h2",
        "overlay_vtep: 198.18.1.99\n",
        "h2: overlay_vtep 198.18.1.99 is not an address of this host",
        kind="inventory",
    ),
    host_vars(
        "vtep-of-another-host",
        "two hosts with one VTEP",
        "h3",
        "overlay_vtep: 198.18.1.2\n",
        "h3: overlay_vtep 198.18.1.2 is not an address of this host",
        kind="inventory",
    ),
    host_vars(
        "vtep-not-an-ip",
        "a VTEP that is not an IP address",
        "h2",
        "overlay_vtep: '198.18.1'\n",
        "fatal: [h2]",
        "vtep: '198.18.1' is not an IP address",
        kind="inventory",
    ),
    extra_vars(
        "fleet-group-missing",
        "overlay_fleet_group naming no group",
        {"overlay_fleet_group": "nosuch"},
        "h1 is not in the inventory group 'nosuch' (overlay_fleet_group)",
        kind="inventory",
    ),
    inventory(
        "networks-differ-per-host",
        "one host sees another overlay_networks",
        ["host h2: overlay_networks differs from host h1's", "10.215.0.0/24"],
        overrides={"h2": "overlay_networks: " + json.dumps(nets((1, {"subnet": "10.215.0.0/24"}))["overlay_networks"])},
    ),
    inventory(
        "foreign-vxlan-port",
        "a hand-made vxlan device (another VNI) on the VTEP's address and port",
        ["fatal: [h2]", "vxlan device vxfor (vni 4242, port 4789, local 198.18.1.2) in the host namespace", "port:"],
        setup=(
            "h2",
            "ip link add vxfor type vxlan id 4242 dstport 4789 local 198.18.1.2 dev eth0 nolearning",
            "ip link del vxfor",
        ),
    ),
    # --- single modules, on h1 ------------------------------------------------------------------------------
    module(
        "fdb-mac",
        "fdb: a truncated MAC",
        ["entries[0].mac: '02:42:0a:d5:00'"],
        "netfleet.overlay.fdb",
        {**FDB, "entries": [{"mac": "02:42:0a:d5:00", "dst": "198.18.1.2"}]},
    ),
    module(
        "fdb-family",
        "fdb: an IPv6 dst on an IPv4 vxlan",
        ["entries[0].dst: 2001:db8::2 is IPv6", "198.18.1.1 is IPv4"],
        "netfleet.overlay.fdb",
        {**FDB, "entries": [{"mac": "02:42:0a:d5:00:03", "dst": "2001:db8::2"}]},
    ),
    module(
        "neigh-duplicate",
        "neigh: one IP twice",
        ["entries[1]: duplicate key 10.213.0.3"],
        "netfleet.overlay.neigh",
        {**FDB, "entries": [{"ip": "10.213.0.3", "mac": "02:42:0a:d5:00:03"}] * 2},
    ),
    module("vxlan-vni", "vxlan: vni 0", ["vni: 0 is outside 1..16777215"], "netfleet.overlay.vxlan", {**VX, "vni": 0}),
    module(
        "vxlan-local",
        "vxlan: a local address that is not the host's",
        ["local: 198.18.9.9 is not an address of this host"],
        "netfleet.overlay.vxlan",
        {**VX, "local": "198.18.9.9"},
    ),
    module(
        "facts-vtep",
        "overlay_facts: a VTEP that is not an IP",
        ["vtep: '198.18.1' is not an IP address"],
        "netfleet.overlay.overlay_facts",
        {"vtep": "198.18.1"},
    ),
    module(
        "host-vtep-not-local",
        "overlay_host: a VTEP that is not the host's",
        ["vtep: 198.18.1.99 is not an address of this host"],
        "netfleet.overlay.overlay_host",
        {"vtep": "198.18.1.99", "networks": [H1_NET]},
    ),
    module(
        "host-network-missing-key",
        "overlay_host: a network without port, mtu, ...",
        ["networks[0] (overlay_network): missing key(s) port, mtu, netns"],
        "netfleet.overlay.overlay_host",
        {"vtep": "198.18.1.1", "networks": [{"name": "overlay_network", "vni": 256}]},
    ),
    module(
        "host-network-vni",
        "overlay_host: vni 'abc'",
        ["networks[0] (overlay_network).vni: 'abc' is not an integer"],
        "netfleet.overlay.overlay_host",
        {"vtep": "198.18.1.1", "networks": [{**H1_NET, "vni": "abc"}]},
    ),
    module(
        "host-network-fdb",
        "overlay_host: a bad FDB entry in the second network",
        ["networks[1] (backend).fdb: entries[0].mac: 'zz'"],
        "netfleet.overlay.overlay_host",
        {
            "vtep": "198.18.1.1",
            "networks": [
                H1_NET,
                {
                    **H1_NET,
                    "name": "backend",
                    "vni": 300,
                    "netns": "ovl-300",
                    "endpoints": [],
                    "fdb": [{"mac": "zz", "dst": "198.18.1.2"}],
                },
            ],
        },
    ),
    module(
        "host-endpoint-address",
        "overlay_host: an endpoint address without prefix length",
        ["networks[0] (overlay_network).endpoints[0].address: '10.213.0.2' needs a prefix length"],
        "netfleet.overlay.overlay_host",
        {
            "vtep": "198.18.1.1",
            "networks": [{**H1_NET, "endpoints": [{**H1_NET["endpoints"][0], "address": "10.213.0.2"}]}],
        },
    ),
]
CHECKS = [
    "fails (rc != 0) with the field, the host and the value in the failure message",
    "no task reports changed",
    "kernel snapshot of h1, h2, h3 identical before and after",
]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    for fleet in lab_fleet(tmp_path_factory, "bad_input"):
        fleet.last = None
        yield fleet


def test_the_good_topology_converges(fleet):
    recap, changed = fleet.converge()[1:]
    assert changed == [] and all(c["changed"] == 0 for c in recap.values()), recap


def test_the_matrix_is_big_enough():
    assert len({case.id for case in CASES}) == len(CASES) >= 60


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_fails_and_changes_nothing(fleet, case):
    started = time.monotonic()
    if case.setup:
        fleet.sh(case.setup[0], case.setup[1])
    try:
        # nothing happens between two cases: the last case's "after" is this one's "before"
        before = fleet.last if fleet.last is not None and not case.setup else fleet.snapshot()
        if case.module:
            host, name, args = case.module
            res = fleet.module(host, name, args)
            changed = ["changed"] if " | CHANGED" in res.stdout else []
        else:
            args = ("-e", json.dumps(case.extra)) if case.extra else ()
            res, recap, changed = fleet.play("site.yml", *args, overrides=case.overrides)
            changed += [h for h, c in recap.items() if c["changed"] and h not in changed]
        after = fleet.snapshot()
    finally:
        fleet.last = None
        if case.setup:
            fleet.sh(case.setup[0], case.setup[2])
    if not case.setup:
        fleet.last = after
    message = fatal_text(res.stdout)
    missing = [word for word in case.words if word not in message]
    problems = []
    if res.returncode == 0:
        problems.append("did not fail")
    if missing:
        problems.append(f"message lacks {missing}")
    if changed:
        problems.append(f"reported changed: {changed}")
    if after != before:
        problems.append("changed the kernel:\n" + snapshot_diff(before, after))
    fleet.results.add(
        case.kind,
        case.id,
        CHECKS,
        not problems,
        time.monotonic() - started,
        what=case.what,
        message=_first_message(message),
        problems=problems,
    )
    assert not problems, f"{case.id}: {'; '.join(problems)}\n{message[-3000:]}\n{res.stdout[-3000:]}"


def _first_message(text: str) -> str:
    """The failure message of the first failed host, without Ansible's wrapping, for the results file."""
    for line in text.splitlines():
        if '"msg": "' in line:
            msg = line.split('"msg": "', 1)[1].split('"}', 1)[0].split('", "', 1)[0].rstrip('",')
            for marker in ("peer_tables: ", "fleet_records: ", "Validation of arguments failed:\\n"):
                msg = msg.split(marker, 1)[-1]
            return msg.replace("\\n", "; ")[:400]
    return text.splitlines()[0][:400] if text else ""


def test_teardown_leaves_no_residue(fleet):
    check_teardown_leaves_no_residue(fleet, "teardown-after-bad-input")
