# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The domain model: the rules that the controller and the modules share, each with the caller's label and error."""

from __future__ import annotations

import ipaddress
import random

import pytest

from ansible_collections.netfleet.overlay.plugins.module_utils import _model as m


class Refused(ValueError):
    pass


@pytest.mark.parametrize(("value", "number"), [(5, 5), ("5", 5), (" 42 ", 42), ("+7", 7), (16777215, 16777215)])
def test_check_int_takes_ints_and_their_decimal_text(value, number):
    assert m.check_int(value, "x", 0, m.MAX_VNI, error=Refused) == number


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "x True is not an integer (got bool)"),
        (1.5, "x 1.5 is not an integer (got float)"),
        (None, "x None is not an integer (got null)"),
        ("1.5", "x '1.5' is not an integer"),
        ("five", "x 'five' is not an integer"),
        (11, "x 11 is outside 1..10 (a range)"),
        ("0", "x 0 is outside 1..10 (a range)"),
    ],
)
def test_check_int_refuses_with_the_label_and_the_error(value, message):
    with pytest.raises(Refused) as refused:
        m.check_int(value, "x", 1, 10, "a range", error=Refused)
    assert str(refused.value) == message


def test_vni_port_and_mtu_ranges():
    assert m.check_vni("256", "vni") == 256
    assert m.check_port(4789, "port") == 4789
    with pytest.raises(ValueError, match=r"^vni: 0 is outside 1\.\.16777215 \(24-bit VXLAN network identifier\)$"):
        m.check_vni(0, "vni:")
    with pytest.raises(ValueError, match=r"^port 65536 is outside 1\.\.65535 \(UDP port\)$"):
        m.check_port(65536, "port")
    assert m.check_mtu(1279, "mtu") == 1279  # IPv4 by default
    with pytest.raises(ValueError, match="mtu 1279 is below 1280, the minimum MTU for an IPv6 subnet"):
        m.check_mtu(1279, "mtu", 6)
    with pytest.raises(ValueError, match=r"mtu 67 is outside 68\.\.65535 \(link MTU\)"):
        m.check_mtu(67, "mtu")


def test_check_mac():
    assert m.check_mac(" 02-42-0A-D5-00-02 ", "mac") == "02:42:0a:d5:00:02"
    assert m.check_mac(m.ZERO_MAC, "mac", allow_zero=True) == m.ZERO_MAC
    for value, words in (
        (5, "mac 5 must be a MAC address string, got int"),
        ("02:42:0a:d5:00", "is not a MAC address"),
        (m.ZERO_MAC, "is the all-zero MAC"),
        ("01:00:5e:00:00:01", "a unicast MAC is needed here"),
    ):
        with pytest.raises(Refused, match=words):
            m.check_mac(value, "mac", unicast=True, error=Refused)


def test_names():
    assert m.overlay_netns(256) == "ovl-256"
    assert [m.overlay_netns_vni(name) for name in ("ovl-256", "ovl-0256", "ovl-16777216", "ovl-x", "web")] == [
        256,
        None,
        None,
        None,
        None,
    ]
    assert m.veth_name("hosta") == "veth-hosta"
    assert len(m.veth_name("a-very-long-endpoint")) == m.IFNAMSIZ
    assert m.temp_vxlan_name(256) == "nfvx-000100"
    assert m.netns_path("ovl-256") == "/run/netns/ovl-256"
    assert m.netns_path("/proc/1/ns/net") == "/proc/1/ns/net"
    assert m.valid_name("web_1.a") and not m.valid_name(".hidden") and not m.valid_name("a b")


def test_mtu_arithmetic_and_macs():
    assert m.vxlan_mtu(None, 4) == 1450
    assert m.vxlan_mtu(9000, 6) == 8930
    assert m.derive_mac("10.213.0.2") == "02:42:0a:d5:00:02"
    six = m.derive_mac("fd00::2", salt="net")
    assert six.startswith("02:") and six == m.derive_mac("fd00::2", salt="net") != m.derive_mac("fd00::2", salt="b")


@pytest.mark.parametrize(
    ("value", "result"),
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        ("yes", True),
        (" True ", True),
        ("off", False),
        ("0", False),
    ],
)
def test_check_bool_takes_what_ansibles_bool_type_takes(value, result):
    assert m.check_bool(value, "x", error=Refused) is result


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("maybe", "x 'maybe' is not a boolean (true or false; got str)"),
        (2, "x 2 is not a boolean (true or false; got int)"),
        (None, "x None is not a boolean (true or false; got null)"),
        ([True], "x [True] is not a boolean (true or false; got list)"),
    ],
)
def test_check_bool_refuses_with_the_label_and_the_error(value, message):
    with pytest.raises(Refused) as refused:
        m.check_bool(value, "x", error=Refused)
    assert str(refused.value) == message


@pytest.mark.parametrize("name", ["eth0", "ovl0", "a", "x" * m.IFNAMSIZ, "en-p1.100", "é"])
def test_check_ifname_takes_linux_interface_names(name):
    assert m.check_ifname(name, "x", error=Refused) == name


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("", "must be 1 to 15 characters long (Linux IFNAMSIZ)"),
        ("x" * (m.IFNAMSIZ + 1), "must be 1 to 15 characters long"),
        ("a/b", "is not a valid interface name"),
        ("a b", "is not a valid interface name"),
        ("eth0:1", "is not a valid interface name"),
        ("..", "is not a valid interface name"),
    ],
)
def test_check_ifname_refuses(name, words):
    with pytest.raises(Refused) as refused:
        m.check_ifname(name, "host h1: endpoint 'a' interface", error=Refused)
    assert str(refused.value).startswith(f"host h1: endpoint 'a' interface {name!r} ")
    assert words in str(refused.value)


def test_the_gateway_is_the_first_host_address():
    assert str(m.gateway_address(ipaddress.ip_network("10.214.0.0/24"))) == "10.214.0.1"
    assert m.gateway_address(ipaddress.ip_network("fd00:214::/64")).compressed == "fd00:214::1"


def test_the_gateway_mac_is_the_vni_under_its_own_locally_administered_prefix():
    assert m.gateway_mac(300) == "06:00:00:01:2c:01"
    assert m.gateway_mac(1) == "06:00:00:00:01:01"
    assert m.gateway_mac(m.MAX_VNI) == "06:00:ff:ff:ff:01"
    vnis = [1, 2, 255, 256, 4096, m.MAX_VNI, *random.Random(14).sample(range(1, m.MAX_VNI + 1), 5000)]
    macs = {m.gateway_mac(vni) for vni in vnis}
    assert len(macs) == len(set(vnis))  # one per network: the VNI is in it, whole
    for mac in macs:
        first = int(mac[:2], 16)
        assert first & 0x02 and not first & 0x01  # locally administered, unicast
        assert m.check_mac(mac, "gateway", unicast=True) == mac


def test_no_endpoint_mac_rule_ever_gives_a_gateway_mac():
    """Derived endpoint MACs start with 02 (``02:42:`` + IPv4, ``02:`` + hash for IPv6); gateway MACs with 06.

    The first octet alone keeps them apart, whatever the rest: checked at the edges of both address families and
    on a sample of each, with and without a salt.
    """
    rng = random.Random(14)
    v4 = [
        "0.0.0.0",
        "10.214.0.1",
        "255.255.255.255",
        *(str(ipaddress.IPv4Address(rng.getrandbits(32))) for _draw in range(3000)),
    ]
    v6 = ["::", "fd00:214::1", *(ipaddress.IPv6Address(rng.getrandbits(128)).compressed for _draw in range(3000))]
    derived = {m.derive_mac(address) for address in v4}
    derived |= {m.derive_mac(address, salt) for address in v6 for salt in ("", "backend")}
    assert {mac[:3] for mac in derived} == {"02:"}
    assert m.GATEWAY_MAC_OCTET != 0x02
    assert not derived & {m.gateway_mac(vni) for vni in range(1, 70000)}


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("web1", None),
        ("web1.backend", None),
        ("a" * 63, None),
        ("a" * 64, "its label 'aaaa"),
        ("a..b", "it has an empty label"),
        ("a.", "it has an empty label"),
        (".".join(["a" * 60] * 5), "it is longer than 253 characters"),
    ],
)
def test_dns_name_problem(name, problem):
    found = m.dns_name_problem(name)
    assert found == problem if problem is None else found.startswith(problem)


def test_an_endpoint_has_two_names():
    assert m.dns_names("web1", "backend") == ("web1", "web1.backend")


@pytest.mark.parametrize(("flood", "proxy"), [(False, True), (True, True), (True, False)])
def test_flood_and_proxy_go_together_unless_neither_is_on(flood, proxy):
    assert m.proxy_problem(flood, proxy) is None


def test_proxy_off_without_flood_would_never_resolve_an_address():
    assert m.proxy_problem(False, False).startswith("proxy false needs flood true: without the proxy the peers")


@pytest.mark.parametrize(
    ("address", "prefixlen", "brd"),
    [("10.213.0.2", 24, "10.213.0.255"), ("10.0.0.1", 30, "10.0.0.3"), ("10.0.0.1", 31, None), ("fd00::2", 64, None)],
)
def test_broadcast_address_is_the_subnets_last_ipv4_address(address, prefixlen, brd):
    assert m.broadcast_address(address, prefixlen) == brd
