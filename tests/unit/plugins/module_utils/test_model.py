# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The domain model: the rules that the controller and the modules share, each with the caller's label and error."""

from __future__ import annotations

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
