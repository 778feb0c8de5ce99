# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The VTEP allowlist (_firewall) on nft's real JSON, and the host lock (_lock), without root."""

from __future__ import annotations

import copy
import json
import os

import pytest

from ansible_collections.netfleet.overlay.plugins.module_utils import _firewall as f
from ansible_collections.netfleet.overlay.plugins.module_utils import _lock
from ansible_collections.netfleet.overlay.plugins.module_utils import _validate as v

# `nft -j list table inet netfleet_overlay` (nftables 1.0.6) after applying script(wanted(V1, [V2], [4789])).
LISTING = json.loads(
    """{"nftables": [
 {"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
 {"table": {"family": "inet", "name": "netfleet_overlay", "handle": 2}},
 {"set": {"family": "inet", "name": "ports", "table": "netfleet_overlay", "type": "inet_service", "handle": 1,
          "elem": [4789]}},
 {"set": {"family": "inet", "name": "vteps", "table": "netfleet_overlay", "type": "ipv4_addr", "handle": 2,
          "elem": ["198.18.1.2"]}},
 {"chain": {"family": "inet", "table": "netfleet_overlay", "name": "input", "handle": 3, "type": "filter",
            "hook": "input", "prio": 0, "policy": "accept"}},
 {"rule": {"family": "inet", "table": "netfleet_overlay", "chain": "input", "handle": 4, "expr": [
   {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": "@ports"}},
   {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "198.18.1.1"}},
   {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "@vteps"}},
   {"accept": null}]}},
 {"rule": {"family": "inet", "table": "netfleet_overlay", "chain": "input", "handle": 5, "expr": [
   {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": "@ports"}},
   {"counter": {"packets": 0, "bytes": 0}},
   {"drop": null}]}}
]}"""
)
# The drop rule of releases that guarded the VTEP address only (issue 12, finding 1): UDP to the overlay port on
# loopback, a second address or the subnet broadcast passed it.
VTEP_ONLY_DROP = [
    {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "198.18.1.1"}},
    {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": "@ports"}},
    {"counter": {"packets": 0, "bytes": 0}},
    {"drop": None},
]
V1, V2, V3 = "198.18.1.1", "198.18.1.2", "198.18.1.3"


def items(listing, kind):
    return [item[kind] for item in listing["nftables"] if kind in item]


# --- wanted and canonical ---------------------------------------------------------------------------------------


def test_listing_of_the_applied_script_equals_the_wanted_table():
    assert f.canonical(LISTING) == f.wanted(V1, [V2], [4789])


def test_counter_values_and_handles_do_not_matter():
    listing = copy.deepcopy(LISTING)
    items(listing, "rule")[1]["expr"][1]["counter"] = {"packets": 42, "bytes": 4242}
    for kind in ("set", "chain", "rule"):
        for obj in items(listing, kind):
            obj["handle"] += 100
    assert f.canonical(listing) == f.wanted(V1, [V2], [4789])


@pytest.mark.parametrize(
    "drift",
    [
        lambda lst: items(lst, "set")[1]["elem"].append("198.18.9.9"),  # a rogue VTEP added by hand
        lambda lst: items(lst, "set")[1].pop("elem"),  # the set flushed
        lambda lst: items(lst, "chain")[0].update(policy="drop"),
        lambda lst: items(lst, "chain")[0].update(prio=-300),
        lambda lst: items(lst, "table")[0].update(flags=["dormant"]),
        lambda lst: lst["nftables"].pop(),  # the drop rule deleted
        lambda lst: items(lst, "rule")[0]["expr"].insert(0, {"meta": {"key": "mark"}}),
        lambda lst: items(lst, "rule")[1].update(expr=copy.deepcopy(VTEP_ONLY_DROP)),
        lambda lst: lst["nftables"].append({"map": {"family": "inet", "name": "m", "table": "netfleet_overlay"}}),
    ],
    ids=[
        "extra-element",
        "flushed-set",
        "policy",
        "priority",
        "dormant",
        "rule-deleted",
        "rule-edited",
        "vtep-only-drop",
        "map",
    ],
)
def test_any_drift_is_a_difference(drift):
    listing = copy.deepcopy(LISTING)
    drift(listing)
    assert f.canonical(listing) != f.wanted(V1, [V2], [4789])


def test_no_table_in_the_listing():
    assert f.canonical({"nftables": [{"metainfo": {}}]}) is None


def test_wanted_normalises_and_sorts():
    table = f.wanted(" 198.18.1.1", [V3, V2, V3, "198.18.1.10"], [8472, 4789, "4789"])
    assert table["sets"]["vteps"] == {"type": "ipv4_addr", "elements": [V2, V3, "198.18.1.10"]}
    assert table["sets"]["ports"] == {"type": "inet_service", "elements": [4789, 8472]}
    six = f.wanted("2001:db8::1", ["2001:DB8:0::2"], [4789])
    assert six["sets"]["vteps"] == {"type": "ipv6_addr", "elements": ["2001:db8::2"]}
    assert six["rules"]["input"] == [
        "udp dport @ports ip6 daddr 2001:db8::1 ip6 saddr @vteps accept",
        "udp dport @ports counter drop",
    ]


@pytest.mark.parametrize("vtep", [V1, "2001:db8::1"])
def test_the_drop_guards_every_local_address(vtep):
    """VXLAN sockets are bound to the wildcard address: the drop must not name a destination, family or interface,
    so loopback, a second address, the broadcast and multicast addresses and the other family are dropped too."""
    accept, drop = f.wanted(vtep, [], [4789])["rules"]["input"]
    assert accept.endswith(" saddr @vteps accept") and f"daddr {vtep} " in accept
    assert drop == "udp dport @ports counter drop"
    assert f.wanted(vtep, [], [4789])["chains"]["input"].startswith("type filter hook input ")


@pytest.mark.parametrize(
    ("vtep", "allow", "ports", "message"),
    [
        ("nope", [], [4789], "vtep: 'nope' is not an IP address"),
        (V1, ["2001:db8::2"], [4789], "allow[0]: '2001:db8::2' is an IPv6 address but vtep 198.18.1.1 is IPv4"),
        (V1, [V2, "198.18.1"], [4789], "allow[1]: '198.18.1' is not an IP address"),
        (V1, [V2], [0], "ports[0]: 0 is outside 1..65535"),
        (V1, [V2], [], "ports: the list is empty"),
    ],
)
def test_bad_input_names_the_field(vtep, allow, ports, message):
    with pytest.raises(v.InputError, match=message.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        f.wanted(vtep, allow, ports)


def test_script_replaces_the_whole_table_in_one_transaction():
    lines = f.script(f.wanted(V1, [], [4789]), exists=True)
    assert lines[:3] == [
        "add table inet netfleet_overlay",
        "delete table inet netfleet_overlay",
        "add table inet netfleet_overlay",
    ]
    assert not any("add element inet netfleet_overlay vteps" in line for line in lines)  # empty set: no elements
    assert all(" inet netfleet_overlay" in line for line in lines)  # never another table
    assert f.script(None, exists=True) == ["delete table inet netfleet_overlay"]
    assert f.script(None, exists=False) == []


# --- converge with a fake nft -----------------------------------------------------------------------------------


class FakeNft:
    """A stand-in for run_command that keeps one table as nft's JSON and records the scripts applied."""

    def __init__(self, listing=None):
        self.listing = listing
        self.applied: list[str] = []

    def __call__(self, args, data=None):
        if args[1:3] == ["-j", "list"]:
            if self.listing is None:
                return 1, "", "Error: No such file or directory\nlist table inet netfleet_overlay\n"
            return 0, json.dumps(self.listing), ""
        assert args[1:] == ["-f", "-"]
        self.applied.append(data)
        self.listing = None if "delete table" in data and "add chain" not in data else LISTING
        return 0, "", ""


def test_converge_creates_then_changes_nothing():
    fake = FakeNft()
    nft = f.Nft(fake, "/usr/sbin/nft")
    wanted = f.wanted(V1, [V2], [4789])
    result = f.converge(nft, wanted, check_mode=False)
    assert result["changed"] and result["before"] == {} and result["after"]["allow"] == [V2]
    assert result["commands"] == f.script(wanted, exists=False)
    assert len(fake.applied) == 1
    again = f.converge(nft, wanted, check_mode=False)
    assert not again["changed"] and again["commands"] == [] and len(fake.applied) == 1


def test_check_mode_predicts_and_writes_nothing():
    fake = FakeNft(copy.deepcopy(LISTING))
    nft = f.Nft(fake, "/usr/sbin/nft")
    result = f.converge(nft, f.wanted(V1, [V2, V3], [4789]), check_mode=True)
    assert result["changed"] and result["before"]["allow"] == [V2] and result["after"]["allow"] == [V2, V3]
    assert fake.applied == []
    removal = f.converge(nft, None, check_mode=True)
    assert (
        removal["changed"] and removal["after"] == {} and removal["commands"] == ["delete table inet netfleet_overlay"]
    )
    assert fake.applied == []


def test_missing_nft():
    nft = f.Nft(FakeNft(), None)
    assert f.converge(nft, None, check_mode=False) == {"changed": False, "before": {}, "after": {}, "commands": []}
    with pytest.raises(f.FirewallError, match="nft not found on the host: install nftables"):
        f.converge(nft, f.wanted(V1, [V2], [4789]), check_mode=False)


# --- status: the flush check of overlay_facts ---------------------------------------------------------------------


def test_status_of_the_table_as_written():
    fake = FakeNft(copy.deepcopy(LISTING))
    assert f.status(f.Nft(fake, "nft")) == {
        "present": True,
        "intact": True,
        "vtep": V1,
        "allow": [V2],
        "ports": [4789],
    }
    assert fake.applied == []  # a read, never a write


def test_status_after_nft_flush_ruleset():
    assert f.status(f.Nft(FakeNft(None), "nft")) == {
        "present": False,
        "intact": False,
        "vtep": None,
        "allow": [],
        "ports": [],
    }


@pytest.mark.parametrize(
    "drift",
    [
        lambda lst: items(lst, "rule")[1].update(expr=copy.deepcopy(VTEP_ONLY_DROP)),  # an older release's table
        lambda lst: lst["nftables"].pop(),  # the drop rule deleted
        lambda lst: items(lst, "set")[0].pop("elem"),  # no ports left
        lambda lst: items(lst, "chain")[0].update(policy="drop"),
        lambda lst: items(lst, "rule")[0]["expr"][1]["match"].update(right="198.18.7.7"),  # another VTEP: read back
    ],
    ids=["vtep-only-drop", "drop-deleted", "ports-flushed", "policy", "other-vtep"],
)
def test_status_of_a_table_that_is_not_as_written(drift):
    listing = copy.deepcopy(LISTING)
    drift(listing)
    state = f.status(f.Nft(FakeNft(listing), "nft"))
    assert state["present"] is True
    # a table for another VTEP is intact (whether it is the host's VTEP is the converge's question), the rest not
    assert state["intact"] is (state["vtep"] == "198.18.7.7")


def test_nft_errors_are_reported():
    nft = f.Nft(lambda args, data=None: (1, "", "Error: Could not process rule: Operation not permitted"), "nft")
    with pytest.raises(f.FirewallError, match=r"cannot read nftables table inet netfleet_overlay: .*not permitted"):
        nft.read()


# --- the host lock ----------------------------------------------------------------------------------------------


def test_lock_serialises_and_names_the_holder_on_timeout(tmp_path):
    path = str(tmp_path / "netfleet-overlay.lock")
    with _lock.host_lock(5, path=path):
        with open(path, encoding="ascii") as fh:
            assert fh.read().strip() == str(os.getpid())
        with (
            pytest.raises(
                _lock.LockTimeout, match=rf"held the host lock {path} for more than 0.2 s .*pid {os.getpid()}"
            ),
            _lock.host_lock(0.2, path=path, poll=0.05),
        ):
            pass
    with _lock.host_lock(0, path=path):  # released: free at once
        pass
