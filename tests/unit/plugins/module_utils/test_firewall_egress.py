# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The egress part of table inet netfleet_overlay (_firewall.egress, issue 14) on nft's real JSON, without root:
its rendering, the one table it makes with the allowlist, and what status and the vtep_firewall module keep."""

from __future__ import annotations

import copy
import json

import pytest

from ansible_collections.netfleet.overlay.plugins.module_utils import _firewall as f

# `nft -j list table inet netfleet_overlay` (nftables 1.0.6) after applying script(egress("eth0", [4789, 4790], True)):
# the table of a host with an egress network and overlay_firewall off.
LISTING = json.loads(
    """{"nftables": [
 {"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
 {"table": {"family": "inet", "name": "netfleet_overlay", "handle": 2}},
 {"set": {"family": "inet", "name": "egress_ports", "table": "netfleet_overlay", "type": "inet_service",
   "handle": 1, "elem": [4789, 4790]}},
 {"chain": {"family": "inet", "table": "netfleet_overlay", "name": "egress_forward", "handle": 2, "type": "filter",
   "hook": "forward", "prio": 0, "policy": "accept"}},
 {"chain": {"family": "inet", "table": "netfleet_overlay", "name": "egress_input", "handle": 8, "type": "filter",
   "hook": "input", "prio": 0, "policy": "accept"}},
 {"chain": {"family": "inet", "table": "netfleet_overlay", "name": "egress_nat", "handle": 11, "type": "nat",
   "hook": "postrouting", "prio": 100, "policy": "accept"}},
 {"rule": {"family": "inet", "table": "netfleet_overlay", "chain": "egress_forward", "handle": 3,
   "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "ovg-*"}}, {"match": {"op": "==",
   "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": "@egress_ports"}}, {"drop": null}]}},
 {"rule": {"family": "inet", "table": "netfleet_overlay", "chain": "egress_forward", "handle": 4,
   "expr": [{"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "ovg-*"}}, {"match": {"op": "in",
   "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}, {"accept": null}]}},
 {"rule": {"family": "inet", "table": "netfleet_overlay", "chain": "egress_forward", "handle": 5,
   "expr": [{"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "ovg-*"}},
   {"counter": {"packets": 0, "bytes": 0}}, {"drop": null}]}},
 {"rule": {"family": "inet", "table": "netfleet_overlay", "chain": "egress_forward", "handle": 6,
   "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "ovg-*"}}, {"match": {"op": "!=",
   "left": {"meta": {"key": "oifname"}}, "right": "eth0"}}, {"drop": null}]}},
 {"rule": {"family": "inet", "table": "netfleet_overlay", "chain": "egress_forward", "handle": 7,
   "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "eth0"}}, {"drop": null}]}},
 {"rule": {"family": "inet", "table": "netfleet_overlay", "chain": "egress_input", "handle": 9,
   "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "ovg-*"}}, {"match": {"op": "in",
   "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}, {"accept": null}]}},
 {"rule": {"family": "inet", "table": "netfleet_overlay", "chain": "egress_input", "handle": 10,
   "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "ovg-*"}},
   {"counter": {"packets": 0, "bytes": 0}}, {"drop": null}]}},
 {"rule": {"family": "inet", "table": "netfleet_overlay", "chain": "egress_nat", "handle": 12,
   "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "ovg-*"}}, {"match": {"op": "==",
   "left": {"meta": {"key": "oifname"}}, "right": "eth0"}}, {"masquerade": null}]}}
]}"""
)
V1, V2 = "198.18.1.1", "198.18.1.2"
ALLOWLIST = f.wanted(V1, [V2], [4789])
EGRESS = f.egress("eth0", [4790, 4789, 4789], own_uplink=True)


def rules(listing, chain):
    return [item["rule"] for item in listing["nftables"] if "rule" in item and item["rule"]["chain"] == chain]


def test_listing_of_the_applied_script_equals_the_wanted_table():
    assert f.canonical(LISTING) == EGRESS


def test_the_egress_rules_as_written():
    assert EGRESS["sets"] == {"egress_ports": {"type": "inet_service", "elements": [4789, 4790]}}
    assert EGRESS["rules"] == {
        "egress_forward": [
            'iifname "ovg-*" udp dport @egress_ports drop',
            'oifname "ovg-*" ct state established,related accept',
            'oifname "ovg-*" counter drop',
            'iifname "ovg-*" oifname != "eth0" drop',
            'iifname "eth0" drop',
        ],
        "egress_input": ['iifname "ovg-*" ct state established,related accept', 'iifname "ovg-*" counter drop'],
        "egress_nat": ['iifname "ovg-*" oifname "eth0" masquerade'],
    }
    assert EGRESS["chains"]["egress_nat"] == "type nat hook postrouting priority 100; policy accept"


def test_an_uplink_that_forwarded_before_is_not_closed():
    """Only an uplink whose forwarding the collection turned on drops what it would forward otherwise."""
    forward = f.egress("eth0", [4789], own_uplink=False)["rules"]["egress_forward"]
    assert 'iifname "eth0" drop' not in forward
    assert forward[-1] == 'iifname "ovg-*" oifname != "eth0" drop'


@pytest.mark.parametrize(
    ("chain", "index", "expr", "text"),
    [
        ("egress_forward", 1, {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "established"}},
         "ct state established"),
        ("egress_forward", 3, {"match": {"op": "!=", "left": {"meta": {"key": "oifname"}}, "right": "eth1"}},
         'oifname != "eth1"'),
        ("egress_nat", 2, {"snat": {"family": "ip", "addr": "198.18.1.9"}}, None),
    ],
)  # fmt: skip
def test_any_drift_of_the_egress_rules_is_a_difference(chain, index, expr, text):
    listing = copy.deepcopy(LISTING)
    rule = rules(listing, chain)[0 if chain == "egress_nat" else index]
    rule["expr"][1 if chain != "egress_nat" else 2] = expr
    table = f.canonical(listing)
    assert table != EGRESS
    if text:
        assert any(text in line for line in table["rules"][chain])


def test_a_deleted_chain_is_a_difference():
    listing = copy.deepcopy(LISTING)
    listing["nftables"] = [
        item for item in listing["nftables"] if ("chain" not in item or item["chain"]["name"] != "egress_nat")
        and ("rule" not in item or item["rule"]["chain"] != "egress_nat")
    ]  # fmt: skip
    assert f.canonical(listing) != EGRESS


def test_merge_and_part():
    both = f.merge(ALLOWLIST, EGRESS)
    assert f.part(both, egress_part=True) == EGRESS
    assert f.part(both, egress_part=False) == ALLOWLIST
    assert f.part(ALLOWLIST, egress_part=True) is None
    assert f.part(EGRESS, egress_part=False) is None
    assert f.merge(None, None) is None
    assert f.merge(None, EGRESS) == EGRESS


class FakeNft(f.Nft):
    def __init__(self, listing):
        super().__init__(None, "/usr/sbin/nft")
        self.listing = listing

    def read(self):
        return f.canonical(self.listing)


def test_status_looks_at_the_allowlist_only():
    """The egress part is the converge's: a table with it is still the intact allowlist for overlay_facts, and a
    table with nothing else has no allowlist."""
    assert f.status(FakeNft(LISTING)) == {"present": False, "intact": False, "vtep": None, "allow": [], "ports": []}
    both = FakeNft(LISTING)
    both.read = lambda: f.merge(ALLOWLIST, EGRESS)
    assert f.status(both) == {"present": True, "intact": True, "vtep": V1, "allow": [V2], "ports": [4789]}


def test_summary_shows_the_egress_rules_and_nothing_else_as_other():
    shown = f.summary(f.merge(ALLOWLIST, EGRESS))
    assert "other" not in shown
    assert shown["rules"]["egress_nat"] == ['iifname "ovg-*" oifname "eth0" masquerade']
    assert "other" not in f.summary(EGRESS)
