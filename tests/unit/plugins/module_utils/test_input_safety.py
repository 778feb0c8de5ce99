# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Input that would reach the kernel, nft scripts or a pasted shell line: scope IDs are refused, words quoted."""

from __future__ import annotations

import shlex

import pytest

from ansible_collections.netfleet.overlay.plugins.module_utils import _cmdline, _links
from ansible_collections.netfleet.overlay.plugins.module_utils import _table as t
from ansible_collections.netfleet.overlay.plugins.module_utils import _validate as v

SCOPED = ["fe80::2%eth0", "fe80::2%1", "fd00::1%a;reboot", " fe80::1%lo "]


@pytest.mark.parametrize("value", SCOPED)
def test_ip_refuses_a_scope_id(value):
    with pytest.raises(v.InputError, match=r"^vtep: .* has an IPv6 scope ID \('%\.\.\.'\), which is not allowed"):
        v.ip(value, "vtep")


@pytest.mark.parametrize("value", [s.strip() + "/64" for s in SCOPED])
def test_interface_address_refuses_a_scope_id(value):
    with pytest.raises(v.InputError, match=r"^address: .* has an IPv6 scope ID"):
        v.interface_address(value, "address")


def test_plain_addresses_still_pass():
    assert v.ip(" FE80::0002 ", "vtep") == "fe80::2"
    assert v.interface_address("fd00::2/64", "address") == ("fd00::2", 64)
    with pytest.raises(v.InputError, match=r"^vtep: '10.0.0.300' is not an IP address$"):
        v.ip("10.0.0.300", "vtep")


@pytest.mark.parametrize(
    ("spec", "entry", "field"),
    [
        (t.NEIGH, {"ip": "fe80::3%vx", "mac": "02:42:0a:d5:00:03"}, "ip"),
        (t.FDB, {"mac": "00:00:00:00:00:00", "dst": "fe80::3%vx"}, "dst"),
    ],
)
def test_table_entries_refuse_a_scope_id(spec, entry, field):
    with pytest.raises(v.InputError, match=rf"^entries\[0\]\.{field}: 'fe80::3%vx' has an IPv6 scope ID"):
        t.normalize_entries(spec, [entry], state="merged")


def test_command_line_words_are_quoted():
    assert _cmdline.ip(None, "link", "set", "vx0", "mtu", 1450) == "ip link set vx0 mtu 1450"
    line = _cmdline.ip("ns;id", "link", "set", "a b", "alias", "it's $(x)")
    assert line == "ip -n 'ns;id' link set 'a b' alias 'it'\"'\"'s $(x)'"
    assert shlex.split(line) == ["ip", "-n", "ns;id", "link", "set", "a b", "alias", "it's $(x)"]


class Handles:
    """Empty fake namespaces: every object is absent, so the planner lists its create steps."""

    class Ns:
        label = "a fake namespace"

        def link(self, _name):
            return None

        def link_index(self, _name):
            return None

    def __call__(self, _name):
        return self.Ns()

    def foreseen(self, _netns, _ifname):
        return False


def test_object_steps_are_quoted_for_the_shell():
    """A netns name may hold ';', '$' and quotes (only '/' and whitespace are refused): each stays one word."""
    netns = "ovl;touch${IFS}pwned"
    params = {"name": "veth-a", "netns": netns, "peer_name": "eth0", "peer_netns": "ep'1", "state": "present"}
    params.update(mtu=1450, master=None, mac="02:42:0a:d5:00:02", address="10.213.0.2/24", alias="x; y")
    obj = _links.Veth(params, Handles())
    obj.validate()
    after = obj.predict(None)
    commands = [step.command for step in obj.steps(None, after)]
    assert commands, "a veth that does not exist yet needs steps"
    for command in commands:
        words = shlex.split(command)
        assert words[0] == "ip"
        assert netns not in command or f"'{netns}'" in command
    assert any(shlex.split(c)[-2:] == ["netns", "ep'1"] for c in commands), commands
