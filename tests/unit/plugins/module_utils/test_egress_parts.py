# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure parts of egress (_egress, issue 14): what fails before any change, whose default route a route is,
the firewall part it asks for, the command lines and the summary."""

from __future__ import annotations

import pytest

from ansible_collections.netfleet.overlay.plugins.module_utils import _egress
from ansible_collections.netfleet.overlay.plugins.module_utils._validate import InputError

UNDER = {"vtep": "198.18.1.1", "vtep_dev": "eth0"}


def net(name="backend", egress=True, gateway="10.214.0.1", port=4789) -> dict:
    return {"name": name, "egress": egress, "port": port, "gateway": {"address": gateway, "prefixlen": 24}}


class Host:
    """The host's namespace as table_part reads it: the uplink's forwarding switch."""

    def __init__(self, forwarding):
        self.forwarding = forwarding

    def __call__(self, _netns):
        return self

    def ipv4_forwarding(self, _ifname):
        return self.forwarding


def test_ipv6_and_a_missing_uplink_fail_by_name():
    _egress.Egress.check([net(egress=False, gateway="fd00::1")], UNDER)  # no egress: nothing to check
    with pytest.raises(InputError, match=r"network 'v6' egress true: egress is IPv4 only"):
        _egress.Egress.check([net(), net("v6", gateway="fd00::1")], UNDER)
    with pytest.raises(InputError, match=r"network 'backend': egress needs the VTEP's device"):
        _egress.Egress.check([net()], {**UNDER, "vtep_dev": None})


def test_the_endpoint_gateway_is_the_first_address_of_its_subnet():
    assert _egress.endpoint_gateway("10.214.0.57/24") == "10.214.0.1"
    assert _egress.endpoint_gateway("10.214.3.9/22") == "10.214.0.1"


@pytest.mark.parametrize(
    ("forwarding", "recorded", "owned"),
    [(False, [], True), (True, [], False), (True, ["eth0"], True)],
)
def test_the_uplink_is_closed_only_when_the_collection_opened_it(forwarding, recorded, owned):
    record = {"forwarding": recorded} if recorded else {}
    egress = _egress.Egress(False, record, [], None)
    part = egress.table_part(Host(forwarding), [net(), net("db", egress=False, port=4790)], UNDER, keep_owned=False)
    assert part["sets"]["egress_ports"]["elements"] == [4789, 4790]
    assert ('iifname "eth0" drop' in part["rules"]["egress_forward"]) is owned


def test_the_part_stays_while_the_uplink_still_forwards_for_egress():
    egress = _egress.Egress(False, {"forwarding": ["eth0"]}, [], None)
    assert egress.table_part(Host(True), [net(egress=False)], UNDER, keep_owned=False) is None
    kept = egress.table_part(Host(True), [net(egress=False)], UNDER, keep_owned=True)
    assert 'iifname "eth0" drop' in kept["rules"]["egress_forward"]
    assert _egress.Egress(False, {}, [], None).table_part(Host(False), [], UNDER, keep_owned=True) is None


def test_command_lines_and_summary():
    line = "ip netns exec ovl-300 sysctl -w net.ipv4.conf.br0.forwarding=1"
    assert _egress.sysctl_cmd("ovl-300", "br0", True) == line
    assert _egress.sysctl_cmd(None, "eth0", False) == "sysctl -w net.ipv4.conf.eth0.forwarding=0"
    egress = _egress.Egress(True, {}, [], None)
    assert egress.summary() == ""
    egress.changed = {"on": ["backend", "web"], "off": ["db"]}
    assert egress.summary() == "egress on (backend, web), egress off (db)"
