# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of encrypted networks on the controller (issue 16): tunnel IPAM, keys, rotation, the plan's
wireguard section and each host's expansion, the MTUs and the checks of bad input."""

from __future__ import annotations

import base64
import json

import pytest
from support.fleet_data import NET, ep

from ansible_collections.netfleet.overlay.plugins.module_utils._host_preflight import check_wireguard
from ansible_collections.netfleet.overlay.plugins.plugin_utils.fleet_records import (
    WIREGUARD_KEY_VAR,
    fleet_record,
)
from ansible_collections.netfleet.overlay.plugins.plugin_utils.peer_tables import (
    PeerTableError,
    compute_peer_tables,
    compute_plan,
    host_tables,
    pack_plan,
    plan_summary,
)

PAY = {"name": "pay", "vni": 900, "subnet": "10.90.0.0/24", "encrypted": True}
NETWORKS = [NET, PAY]
PLAIN = [NET, {**PAY, "encrypted": False}]  # the same fleet, unencrypted


def key(n: int) -> str:
    """A well-formed WireGuard public key (32 bytes of base64), different for each ``n``."""
    return base64.b64encode(bytes([n]) * 32).decode()


def wg(public_key=None, address=None, public_key_next=None, peers=(), port=51820):
    """A host's facts' ``wireguard``, as overlay_facts reports it."""
    return {
        "implementation": "userspace",
        "public_key": public_key,
        "public_key_next": public_key_next,
        "address": address,
        "port": port,
        "peers": list(peers),
    }


def peer(public_key, vtep, address, port=51820):
    return {"public_key": public_key, "endpoint": f"{vtep}:{port}", "allowed_ips": [f"{address}/32"]}


def fleet(**wireguard):
    """h1 and h2 on pay and overlay_network, h3 on pay only, h4 on overlay_network only; keys 1..4."""
    hosts = {
        "h1": {"vtep": "198.18.1.1", "endpoints": [ep("a1"), ep("p1", "pay")], "wireguard": wg(key(1))},
        "h2": {"vtep": "198.18.1.2", "endpoints": [ep("a2"), ep("p2", "pay")], "wireguard": wg(key(2))},
        "h3": {"vtep": "198.18.1.3", "endpoints": [ep("p3", "pay")], "wireguard": wg(key(3))},
        "h4": {"vtep": "198.18.1.4", "endpoints": [ep("a4")], "wireguard": wg(key(4))},
    }
    for record in hosts.values():
        record["underlay_mtu"] = 1500
    for name, facts in wireguard.items():
        hosts[name]["wireguard"] = facts
    return hosts


def net(record, name):
    return next(network for network in record["networks"] if network["name"] == name)


def tables(networks=None, hosts=None, **options):
    networks = NETWORKS if networks is None else networks
    return compute_peer_tables(networks, fleet() if hosts is None else hosts, **options)


def error(networks=None, hosts=None, **options) -> str:
    with pytest.raises(PeerTableError) as info:
        compute_plan(NETWORKS if networks is None else networks, fleet() if hosts is None else hosts, **options)
    return str(info.value)


# --- the tunnel and the tables ---------------------------------------------------------------------------------


def test_an_encrypted_network_runs_between_tunnel_addresses():
    result = tables()
    h1 = result["h1"]
    pay = net(h1, "pay")
    assert pay["encrypted"] is True
    # tunnel addresses in name order, the subnet's first address never
    assert pay["peers"] == ["10.255.0.2", "10.255.0.3"]
    assert pay["peer_hosts"] == {"10.255.0.2": "h2", "10.255.0.3": "h3"}
    assert {entry["dst"] for entry in pay["fdb"]} == {"10.255.0.2", "10.255.0.3"}
    assert pay["mtu"] == 1500 - 60 - 50 and pay["endpoints"][0]["mtu"] == 1390
    assert h1["wireguard"] == {
        "address": "10.255.0.1",
        "prefixlen": 16,
        "port": 51820,
        "mtu": 1440,
        "rotate": False,
        "switch_at": None,
        "peers": [
            {"host": "h2", "public_key": key(2), "endpoint": "198.18.1.2:51820", "address": "10.255.0.2"},
            {"host": "h3", "public_key": key(3), "endpoint": "198.18.1.3:51820", "address": "10.255.0.3"},
        ],
    }
    assert h1["wireguard_allow"] == ["198.18.1.2", "198.18.1.3"]


def test_unencrypted_networks_are_unchanged_and_alone_in_the_allowlist():
    result = tables()
    plain = net(result["h1"], "overlay_network")
    assert plain["encrypted"] is False
    assert plain["peers"] == ["198.18.1.2", "198.18.1.4"]
    assert {entry["dst"] for entry in plain["fdb"]} == {"198.18.1.2", "198.18.1.4"}
    assert plain["mtu"] == 1450
    # the VXLAN port only for the unencrypted network's peers; h3 shares only pay with h1
    assert result["h1"]["allowlist"] == ["198.18.1.2", "198.18.1.4"]
    assert result["h1"]["ports"] == [4789]
    assert result["h3"]["allowlist"] == [] and result["h3"]["ports"] == []
    assert result["h3"]["wireguard_allow"] == ["198.18.1.1", "198.18.1.2"]
    # a host without an encrypted network has no tunnel
    assert result["h4"]["wireguard"] is None and result["h4"]["wireguard_allow"] == []


def test_an_unencrypted_fleet_has_no_wireguard_section_in_its_plan():
    plan = compute_plan(PLAIN, fleet())
    assert plan["wireguard"] is None and plan["warnings"] == []
    packed = pack_plan(plan)
    assert "wireguard" not in packed
    assert all("encrypted" not in json.loads(network) for network in packed["networks"].values())
    assert host_tables(packed, "h1")["wireguard"] is None
    assert net(host_tables(packed, "h1"), "pay")["peers"] == ["198.18.1.2", "198.18.1.3"]


def test_the_packed_plan_holds_one_string_per_tunnel_and_expands_to_the_same_records():
    plan = compute_plan(NETWORKS, fleet())
    packed = json.loads(json.dumps(pack_plan(plan)))  # as Ansible hands it to every host
    assert packed["wireguard"]["subnet"] == "10.255.0.0/16"
    assert sorted(packed["wireguard"]["hosts"]) == ["h1", "h2", "h3"]
    assert all(isinstance(entry, str) for entry in packed["wireguard"]["hosts"].values())
    assert {host: host_tables(packed, host) for host in packed["hosts"]} == tables()
    assert plan_summary(packed) == plan_summary(plan)


def test_every_host_record_passes_overlay_hosts_own_check():
    for name, record in tables().items():
        if record["wireguard"] is not None:
            checked = check_wireguard(record["wireguard"], record["vtep"])
            assert checked["address"] == record["wireguard"]["address"], name


def test_ipv6_tunnel_addresses_and_their_mtu():
    result = tables(wireguard_subnet="fd00:255::/64")
    pay = net(result["h1"], "pay")
    assert pay["peers"] == ["fd00:255::2", "fd00:255::3"]
    assert pay["mtu"] == 1500 - 60 - 70
    assert result["h1"]["wireguard"]["address"] == "fd00:255::1"
    assert result["h1"]["wireguard"]["prefixlen"] == 64


def test_an_explicit_mtu_of_an_encrypted_network_must_leave_room_for_wireguard():
    message = error([NET, {**PAY, "mtu": 1400}])
    assert "host h1: network 'pay' mtu 1400 does not fit the host's underlay" in message
    assert "minus 60 of WireGuard over IPv4 and 50 of VXLAN over the IPv4 tunnel addresses leaves at most 1390" in (
        message
    )
    assert net(tables([NET, {**PAY, "mtu": 1390}])["h1"], "pay")["mtu"] == 1390


def test_a_flood_network_floods_to_the_tunnel_addresses():
    pay = net(tables([NET, {**PAY, "flood": True}])["h2"], "pay")
    flood = [entry["dst"] for entry in pay["fdb"] if entry["mac"] == "00:00:00:00:00:00"]
    assert flood == ["10.255.0.1", "10.255.0.3"]


# --- tunnel IPAM: stable across runs ---------------------------------------------------------------------------


def test_a_host_keeps_the_address_its_facts_show_and_new_hosts_get_the_lowest_free_one():
    hosts = fleet(h2=wg(key(2), "10.255.0.1"), h3=wg(key(3), "10.255.7.7"))
    result = tables(hosts=hosts)
    assert result["h2"]["wireguard"]["address"] == "10.255.0.1"
    assert result["h3"]["wireguard"]["address"] == "10.255.7.7"
    assert result["h1"]["wireguard"]["address"] == "10.255.0.2"


def test_an_address_outside_the_subnet_or_taken_is_not_kept():
    hosts = fleet(h1=wg(key(1), "10.9.0.5"), h2=wg(key(2), "10.255.0.9"), h3=wg(key(3), "10.255.0.9"))
    result = tables(hosts=hosts)
    assert result["h2"]["wireguard"]["address"] == "10.255.0.9"  # first by name keeps it
    assert result["h1"]["wireguard"]["address"] == "10.255.0.1"
    assert result["h3"]["wireguard"]["address"] == "10.255.0.2"


def test_a_host_without_facts_keeps_the_address_its_peers_facts_show():
    hosts = fleet(h1=wg(key(1), "10.255.0.1", peers=[peer(key(3), "198.18.1.3", "10.255.0.30")]))
    hosts["h3"] = {"vtep": "198.18.1.3", "endpoints": [ep("p3", "pay")], "reachable": False}
    result = tables(hosts=hosts)
    assert result["h3"]["skip"] is True
    assert net(result["h1"], "pay")["peer_hosts"] == {"10.255.0.2": "h2", "10.255.0.30": "h3"}
    h3 = next(p for p in result["h1"]["wireguard"]["peers"] if p["host"] == "h3")
    assert h3 == {"host": "h3", "public_key": key(3), "endpoint": "198.18.1.3:51820", "address": "10.255.0.30"}
    # its entries are preserved: by VTEP, which overlay_host maps to the tunnel address of its peer there
    assert result["h1"]["preserve_vteps"] == ["198.18.1.3"] and result["h1"]["allowlist"] == [
        "198.18.1.2",
        "198.18.1.4",
    ]
    assert net(result["h1"], "pay")["peers"] == ["10.255.0.2"]


def test_a_rebooted_host_of_the_run_gets_back_the_address_its_peers_hold():
    """Its /run is gone (no address, a new key); its peers' facts still show its old address for its VTEP."""
    hosts = fleet(
        h1=wg(key(1), "10.255.0.1", peers=[peer(key(9), "198.18.1.2", "10.255.0.5")]),
        h2=wg(key(2), None),
    )
    result = tables(hosts=hosts)
    assert result["h2"]["wireguard"]["address"] == "10.255.0.5"
    # and its peers get its new key, not the one they hold
    assert {p["host"]: p["public_key"] for p in result["h1"]["wireguard"]["peers"]}["h2"] == key(2)


def test_allocation_is_stable_when_a_host_joins():
    before = tables()
    facts = {name: wg(key(n), before[name]["wireguard"]["address"]) for n, name in enumerate(("h1", "h2", "h3"), 1)}
    hosts = fleet(**facts)
    hosts["h0"] = {"vtep": "198.18.1.10", "endpoints": [ep("p0", "pay")], "wireguard": wg(key(10))}
    after = tables(hosts=hosts)
    assert {name: after[name]["wireguard"]["address"] for name in ("h1", "h2", "h3")} == {
        name: before[name]["wireguard"]["address"] for name in ("h1", "h2", "h3")
    }
    assert after["h0"]["wireguard"]["address"] == "10.255.0.4"


def test_an_address_held_for_a_host_outside_the_fleet_is_not_given_away():
    held = peer(key(9), "198.18.1.9", "10.255.0.1")
    hosts = fleet(h1=wg(key(1), peers=[held]))
    hosts["h1"]["peers"] = {"pay": {"10.255.0.1": "h9"}}
    plan = compute_plan(NETWORKS, hosts)
    assert plan["kept"] == [{"host": "h9", "vtep": "10.255.0.1", "networks": ["pay"], "held_by": ["h1"]}]
    h1 = host_tables(plan, "h1")
    assert h1["wireguard"]["address"] == "10.255.0.2"  # .1 is h9's
    assert "198.18.1.9" in h1["preserve_vteps"]  # VTEPs: overlay_host keeps what points at the tunnel there
    assert {"host": "h9", "public_key": key(9), "endpoint": "198.18.1.9:51820", "address": "10.255.0.1"} in h1[
        "wireguard"
    ]["peers"]
    assert "198.18.1.9" in h1["wireguard_allow"] and "10.255.0.1" not in h1["allowlist"]


def test_a_renumbered_peer_is_not_kept_as_a_vanished_host():
    hosts = fleet(h2=wg(key(2), "10.255.0.2"))
    hosts["h1"]["peers"] = {"pay": {"10.255.0.77": "h2"}}  # what h1 held for h2 before
    plan = compute_plan(NETWORKS, hosts)
    assert plan["kept"] == []


# --- keys and rotation -----------------------------------------------------------------------------------------


def test_rotation_gives_peers_the_next_keys_and_each_host_with_one_rotate_true():
    hosts = fleet(
        h1=wg(key(1), public_key_next=key(11)),
        h2=wg(key(2), public_key_next=key(12)),
        h3=wg(key(3)),  # nothing staged (the key task failed there): it keeps its key
    )
    rotated = tables(hosts=hosts, wireguard_rotate=True)
    assert rotated["h1"]["wireguard"]["rotate"] is True
    assert rotated["h3"]["wireguard"]["rotate"] is False
    assert {p["host"]: p["public_key"] for p in rotated["h1"]["wireguard"]["peers"]} == {"h2": key(12), "h3": key(3)}
    assert {p["host"]: p["public_key"] for p in rotated["h3"]["wireguard"]["peers"]} == {"h1": key(11), "h2": key(12)}
    # without rotating, a staged key is left alone
    plain = tables(hosts=hosts)
    assert plain["h1"]["wireguard"]["rotate"] is False
    assert {p["host"]: p["public_key"] for p in plain["h3"]["wireguard"]["peers"]} == {"h1": key(1), "h2": key(2)}
    # -e gives text
    assert tables(hosts=hosts, wireguard_rotate="true")["h1"]["wireguard"]["rotate"] is True


def test_an_unreachable_host_does_not_rotate():
    hosts = fleet(h3=wg(key(3), "10.255.0.3", public_key_next=key(13)))
    hosts["h3"]["reachable"] = False
    hosts["h3"]["current"] = {"p3": {"network": "pay", "ip": "10.90.0.4"}}
    rotated = tables(hosts=hosts, wireguard_rotate=True)
    assert {p["host"]: p["public_key"] for p in rotated["h1"]["wireguard"]["peers"]}["h3"] == key(3)


def test_a_peer_without_a_public_key_is_left_out_with_a_warning():
    hosts = fleet(h3=wg(None))
    plan = compute_plan(NETWORKS, hosts)
    assert [p["host"] for p in host_tables(plan, "h1")["wireguard"]["peers"]] == ["h2"]
    assert host_tables(plan, "h1")["wireguard_allow"] == ["198.18.1.2"]
    assert host_tables(plan, "h3")["wireguard"]["address"] == "10.255.0.3"  # it still gets its tunnel
    (warning,) = plan["warnings"]
    assert warning.startswith("host h3 has endpoints on an encrypted network but no WireGuard public key is known")


def test_garbage_keys_in_the_facts_count_as_none():
    plan = compute_plan(NETWORKS, fleet(h3=wg("not-a-key")))
    assert [p["host"] for p in host_tables(plan, "h1")["wireguard"]["peers"]] == ["h2"]


def test_the_run_s_wireguard_key_result_wins_over_the_facts():
    facts = {"ansible_facts": {"netfleet_overlay": {"vtep": "198.18.1.1", "wireguard": wg(None, "10.255.0.4")}}}
    made = {"changed": True, "public_key": key(1), "public_key_next": None}
    record = fleet_record("h1", {**facts, WIREGUARD_KEY_VAR: made}, True)
    assert record["wireguard"]["public_key"] == key(1) and record["wireguard"]["address"] == "10.255.0.4"
    # skipped on this host, or a host outside the run: the facts
    skipped = {"skipped": True, "changed": False}
    assert fleet_record("h1", {**facts, WIREGUARD_KEY_VAR: skipped}, True)["wireguard"]["public_key"] is None
    assert fleet_record("h1", {**facts, WIREGUARD_KEY_VAR: made}, False)["wireguard"]["public_key"] is None
    assert fleet_record("h1", {}, True)["wireguard"] is None


# --- bad input -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("networks", "options", "message"),
    [
        (
            [NET, {**PAY, "encrypted": "maybe"}],
            {},
            "network 'pay' encrypted 'maybe'",
        ),
        (NETWORKS, {"wireguard_port": 70000}, "overlay_wireguard_port 70000 is outside 1..65535"),
        (NETWORKS, {"wireguard_port": "x"}, "overlay_wireguard_port 'x' is not an integer"),
        (NETWORKS, {"wireguard_port": 4789}, "overlay_wireguard_port 4789 is also the port of unencrypted network"),
        (NETWORKS, {"wireguard_subnet": "10.255.0.1/16"}, "overlay_wireguard_subnet 10.255.0.1/16 has host bits set"),
        (NETWORKS, {"wireguard_subnet": "10.255.0.0"}, "overlay_wireguard_subnet '10.255.0.0' needs a prefix length"),
        (NETWORKS, {"wireguard_subnet": 7}, "overlay_wireguard_subnet 7 must be a CIDR string"),
        (NETWORKS, {"wireguard_subnet": "nope/8"}, "overlay_wireguard_subnet 'nope/8' is not an IPv4 or IPv6 network"),
        (
            NETWORKS,
            {"wireguard_subnet": "198.18.0.0/16"},
            "host h1: vtep 198.18.1.1 is inside overlay_wireguard_subnet 198.18.0.0/16",
        ),
        (
            NETWORKS,
            {"wireguard_subnet": "10.255.0.0/30"},
            "overlay_wireguard_subnet 10.255.0.0/30 is too small: it has room for 2 tunnel addresses but 3 hosts",
        ),
        (NETWORKS, {"wireguard_rotate": "soon"}, "overlay_wireguard_rotate 'soon'"),
    ],
)
def test_bad_input_names_the_field_and_the_value(networks, options, message):
    assert message in error(networks, **options)


def test_a_host_s_wireguard_facts_must_be_a_dict():
    assert "host h1: wireguard must be the dict of the host's facts" in error(hosts=fleet(h1=["x"]))


def test_the_wireguard_options_do_not_matter_to_a_fleet_without_an_encrypted_network():
    # only their form is checked; a VTEP inside the tunnel subnet or a shared port is no problem without encryption
    assert compute_plan(PLAIN, fleet(), wireguard_subnet="198.18.0.0/16", wireguard_port=4789)["wireguard"] is None
    assert "overlay_wireguard_port 0" in error(PLAIN, wireguard_port=0)


def test_hosts_with_reserved_addresses_run_out_of_room_with_a_clear_message():
    held = [peer(key(9 + n), f"198.18.1.{9 + n}", f"10.255.0.{1 + n}") for n in range(4)]
    message = error(hosts=fleet(h1=wg(key(1), peers=held)), wireguard_subnet="10.255.0.0/29")
    assert "overlay_wireguard_subnet 10.255.0.0/29 has no free tunnel address left for host h3" in message


def test_the_plan_stays_linear_in_the_hosts():
    """One encrypted network over n hosts: the packed plan holds each host's tunnel once (no peer list per host)."""

    def size(n: int) -> int:
        hosts = {
            f"h{i:04d}": {
                "vtep": f"198.18.{i // 250}.{i % 250 + 1}",
                "endpoints": [ep(f"e{i}", "pay")],
                "wireguard": wg(key(i % 250)),
            }
            for i in range(n)
        }
        return len(json.dumps(pack_plan(compute_plan([{**PAY, "subnet": "10.64.0.0/16"}], hosts))))

    assert size(400) < 2.1 * size(200)


def test_the_peer_tables_filter_takes_the_wireguard_options():
    from ansible_collections.netfleet.overlay.plugins.filter.peer_tables import FilterModule

    peer_tables = FilterModule().filters()["peer_tables"]
    result = peer_tables(NETWORKS, fleet(), wireguard_subnet="10.254.0.0/24", wireguard_port=51000)
    assert result["h1"]["wireguard"]["address"] == "10.254.0.1" and result["h1"]["wireguard"]["port"] == 51000


def test_a_rotation_switches_the_hosts_one_after_another_at_instants_of_the_plan(monkeypatch):
    from ansible.context import CLIARGS

    from ansible_collections.netfleet.overlay.plugins.action import overlay_plan as action

    hosts = fleet(h1=wg(key(1), public_key_next=key(11)), h2=wg(key(2), public_key_next=key(12)), h3=wg(key(3)))
    monkeypatch.setattr(action.time, "time", lambda: 1000.0)
    monkeypatch.setattr(action.context, "CLIARGS", type(CLIARGS)({"forks": 2}))
    plan = compute_plan(NETWORKS, hosts, wireguard_rotate=True)
    action._set_switch_instants(plan, 3)  # 3 hosts, 2 forks: two batches
    first = 1000.0 + action.SWITCH_MARGIN + 2 * action.SWITCH_PER_BATCH
    expanded = {host: host_tables(pack_plan(plan), host)["wireguard"] for host in ("h1", "h2", "h3")}
    assert expanded["h1"]["switch_at"] == first
    assert expanded["h2"]["switch_at"] == round(first + action.SWITCH_GAP, 3)  # never at the same moment
    assert expanded["h3"]["switch_at"] is None  # nothing staged: it does not rotate
    quiet = compute_plan(NETWORKS, hosts)  # no rotation: no instants, no waiting
    action._set_switch_instants(quiet, 3)
    assert all("switch_at" not in entry for entry in quiet["wireguard"]["hosts"].values())


def test_many_rotating_hosts_switch_within_the_spread():
    from ansible_collections.netfleet.overlay.plugins.action import overlay_plan as action

    plan = {"wireguard": {"hosts": {f"h{i:04d}": {"rotate": True} for i in range(1000)}}}
    action._set_switch_instants(plan, 1000)
    instants = sorted(entry["switch_at"] for entry in plan["wireguard"]["hosts"].values())
    assert len(set(instants)) == 1000 and instants[-1] - instants[0] <= action.SWITCH_SPREAD
