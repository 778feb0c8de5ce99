# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""overlay_host's side of encrypted networks on plain data (issue 16): the ``wireguard`` option's checks, the
encrypted network's vxlan made in ovl-wg on the tunnel address, the allowlist (the WireGuard port from the tunnel's
peers only, the VXLAN ports of the unencrypted networks only), the record's ``wireguard`` entry, and how the run
drives the WireGuard engine (a stub of its Tunnel here)."""

from __future__ import annotations

import base64
import copy

import pytest
from support.fleet_data import H1_NET

from ansible_collections.netfleet.overlay.plugins.module_utils import _firewall, _host, _host_preflight, _records
from ansible_collections.netfleet.overlay.plugins.module_utils._host import HostConverger, TunnelError
from ansible_collections.netfleet.overlay.plugins.module_utils._links import Vxlan, foreseen_address
from ansible_collections.netfleet.overlay.plugins.module_utils._model import WIREGUARD_NETNS
from ansible_collections.netfleet.overlay.plugins.module_utils._module import ModuleError
from ansible_collections.netfleet.overlay.plugins.module_utils._objects import Handles
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl import namespace as nl
from ansible_collections.netfleet.overlay.plugins.module_utils._validate import InputError

VTEP = "198.18.1.1"
KEY2 = base64.b64encode(bytes(range(32))).decode()
KEY3 = base64.b64encode(bytes(range(1, 33))).decode()
WG = {
    "address": "10.255.0.1",
    "prefixlen": 16,
    "port": 51820,
    "mtu": 1440,
    "peers": [
        {"host": "h2", "public_key": KEY2, "endpoint": "198.18.1.2:51820", "address": "10.255.0.2"},
        {"host": "h3", "public_key": KEY3, "endpoint": "198.18.1.3:51820", "address": "10.255.0.3"},
    ],
}
# an encrypted network: its FDB destinations and peer_hosts keys are tunnel addresses
SECRET = {
    **copy.deepcopy(H1_NET),
    "name": "payments",
    "vni": 900,
    "netns": "ovl-900",
    "mtu": 1390,
    "encrypted": True,
    "fdb": [{"mac": "02:42:0a:5a:00:03", "dst": "10.255.0.2"}],
    "neigh": [{"ip": "10.90.0.3", "mac": "02:42:0a:5a:00:03"}],
    "endpoints": [],
    "peer_hosts": {"10.255.0.2": "h2"},
    "peers": ["10.255.0.2"],
}
PLAIN = {**copy.deepcopy(H1_NET), "peers": ["198.18.1.2"], "peer_hosts": {"198.18.1.2": "h2"}}


def params(*networks, wireguard: dict | str | None = "default", **extra) -> dict:
    """overlay_host's parameters; ``wireguard`` defaults to WG (a copy)."""
    wireguard = WG if wireguard == "default" else wireguard
    return {
        "vtep": VTEP,
        "state": "present",
        "preserve_vteps": [],
        "networks": [copy.deepcopy(n) for n in networks],
        "wireguard": copy.deepcopy(wireguard),
        **extra,
    }


# --- the option's shape ---------------------------------------------------------------------------------------


def test_wireguard_is_normalised_and_rotate_defaults_to_false():
    wg = copy.deepcopy(WG)
    wg.update(prefixlen="16", port="51820")
    wg["peers"][1]["endpoint"] = "198.18.1.003:51820"  # a leading zero is no address
    p = params(PLAIN, SECRET, wireguard=wg)
    with pytest.raises(InputError, match=r"wireguard.peers\[1\] \(h3\).endpoint: '198.18.1.003:51820'"):
        _host_preflight.check_input(p)
    p = params(PLAIN, SECRET, wireguard={**WG, "prefixlen": "16", "port": "51820"})
    _host_preflight.check_input(p)
    assert p["wireguard"]["prefixlen"] == 16 and p["wireguard"]["port"] == 51820
    assert p["wireguard"]["rotate"] is False
    assert [net["encrypted"] for net in p["networks"]] == [False, True]


def test_no_wireguard_and_no_encrypted_network_is_the_plain_host():
    p = params(PLAIN, wireguard=None)
    _host_preflight.check_input(p)
    assert p["wireguard"] is None and p["networks"][0]["encrypted"] is False


def test_an_ipv6_endpoint_has_brackets():
    wg = copy.deepcopy(WG)
    wg["peers"] = [{**WG["peers"][0], "endpoint": "[2001:DB8::2]:51820"}]
    p = params(SECRET, wireguard=wg, vtep="2001:db8::1")
    p["vtep"] = "2001:db8::1"
    _host_preflight.check_input(p)
    assert p["wireguard"]["peers"][0]["endpoint"] == "[2001:db8::2]:51820"


def _peer(**change):
    return {**WG["peers"][0], **change}


@pytest.mark.parametrize(
    ("wireguard", "message"),
    [
        ("yes", r"wireguard: expected a dict \(address, prefixlen, port, mtu, peers\) or null, got str"),
        ({**WG, "peers": None}, "wireguard.peers: expected a list, got null"),
        ({k: v for k, v in WG.items() if k != "mtu"}, r"wireguard: missing key\(s\) mtu"),
        ({**WG, "private_key": "x"}, r"wireguard: unknown key\(s\) private_key"),
        ({**WG, "address": "10.255.0.300"}, "wireguard.address/prefixlen: '10.255.0.300/16'"),
        ({**WG, "prefixlen": 33}, "wireguard.address/prefixlen: '10.255.0.1/33'"),
        ({**WG, "address": "198.18.0.9", "prefixlen": 15}, "the tunnel subnet 198.18.0.0/15 holds the VTEP"),
        ({**WG, "address": "10.255.0.0"}, "wireguard.address: 10.255.0.0 is the network or broadcast address"),
        ({**WG, "address": "10.255.255.255"}, "is the network or broadcast address of 10.255.0.0/16"),
        ({**WG, "port": 0}, "wireguard.port: 0"),
        ({**WG, "mtu": 10}, "wireguard.mtu: 10"),
        ({**WG, "rotate": "maybe"}, "wireguard.rotate: 'maybe' is not a boolean"),
        ({**WG, "rotate": True, "switch_at": "soon"}, r"wireguard.switch_at: expected epoch seconds .* got 'soon'"),
        ({**WG, "rotate": True, "switch_at": True}, r"wireguard.switch_at: expected epoch seconds .* got True"),
        ({**WG, "rotate": True, "switch_at": -1}, r"wireguard.switch_at: expected epoch seconds .* got -1"),
        ({**WG, "peers": ["h2"]}, r"wireguard.peers\[0\]: expected a dict \(host, public_key, endpoint, address\)"),
        ({**WG, "peers": [{"host": "h2"}]}, r"wireguard.peers\[0\]: missing key\(s\) public_key, endpoint, address"),
        ({**WG, "peers": [_peer(public_key="abc")]}, r"peers\[0\] \(h2\).public_key: 'abc' is not a WireGuard pub"),
        ({**WG, "peers": [_peer(public_key=None)]}, r"peers\[0\] \(h2\).public_key: null is not a WireGuard pub"),
        ({**WG, "peers": [_peer(endpoint="198.18.1.2")]}, r"\(h2\).endpoint: '198.18.1.2' is not an endpoint"),
        ({**WG, "peers": [_peer(endpoint="2001:db8::2:1")]}, r"\(h2\).endpoint: '2001:db8::2:1' is not an endpoint"),
        ({**WG, "peers": [_peer(endpoint="[2001:db8::2]:1")]}, r"\(h2\).endpoint: .*'2001:db8::2' is not an IPv4"),
        ({**WG, "peers": [_peer(endpoint="198.18.1.2:70000")]}, r"\(h2\).endpoint: 70000"),
        ({**WG, "peers": [_peer(endpoint=f"{VTEP}:51820")]}, r"\(h2\).endpoint: 198.18.1.1:51820 is this host's own"),
        ({**WG, "peers": [_peer(address="10.9.0.2")]}, r"\(h2\).address: 10.9.0.2 is not in the tunnel subnet"),
        ({**WG, "peers": [_peer(address="10.255.0.1")]}, r"\(h2\).address: 10.255.0.1 is also wireguard.address"),
        ({**WG, "peers": [_peer(host="")]}, r"wireguard.peers\[0\] \(\).host: '' is not a valid name"),
        (
            {**WG, "peers": [_peer(), _peer(address="10.255.0.5", endpoint="198.18.1.5:51820")]},
            r"peers\[1\] \(h2\).host: h2 is also the host of wireguard.peers\[0\]",
        ),
        (
            {**WG, "peers": [_peer(), _peer(host="h5", address="10.255.0.5", endpoint="198.18.1.5:51820")]},
            r"peers\[1\] \(h5\).public_key: .* is also the public_key of wireguard.peers\[0\]",
        ),
        (
            {**WG, "peers": [_peer(), {**WG["peers"][1], "endpoint": "198.18.1.2:51821"}]},
            r"peers\[1\] \(h3\).endpoint: 198.18.1.2 is also the endpoint of wireguard.peers\[0\]",
        ),
    ],
)
def test_a_bad_wireguard_value_is_named(wireguard, message):
    with pytest.raises(InputError, match=message):
        _host_preflight.check_input(params(SECRET, wireguard=wireguard))


def test_an_encrypted_network_needs_the_tunnel_and_its_fdb_is_of_the_tunnel_family():
    with pytest.raises(InputError, match=r"networks\[0\] \(payments\).encrypted: true needs the host's wireguard"):
        _host_preflight.check_input(params(SECRET, wireguard=None))
    with pytest.raises(InputError, match=r"networks\[0\] \(payments\).encrypted: 'sure' is not a boolean"):
        _host_preflight.check_input(params({**SECRET, "encrypted": "sure"}))
    bad = {**SECRET, "fdb": [{"mac": "02:42:0a:5a:00:03", "dst": "2001:db8::2"}]}
    with pytest.raises(InputError, match=r"\(payments\).fdb: .*2001:db8::2 is IPv6 but the vxlan device's local"):
        _host_preflight.check_input(params(bad))
    with pytest.raises(InputError, match="wireguard_allow: given without wireguard"):
        _host_preflight.check_input(params(PLAIN, wireguard=None, wireguard_allow=["198.18.1.2"]))
    with pytest.raises(InputError, match=r"wireguard_allow\[0\]: '2001:db8::2'"):
        _host_preflight.check_input(params(SECRET, wireguard_allow=["2001:db8::2"]))


def test_ovl_wg_is_no_network_or_endpoint_netns():
    with pytest.raises(InputError, match=r"\(payments\).netns: ovl-wg is the WireGuard namespace"):
        _host_preflight.check_input(params({**SECRET, "netns": WIREGUARD_NETNS}))
    ep = {**H1_NET["endpoints"][0], "netns": WIREGUARD_NETNS}
    with pytest.raises(InputError, match=r"endpoints\[0\].netns: ovl-wg is the WireGuard namespace"):
        _host_preflight.check_input(params({**PLAIN, "endpoints": [ep]}))


def test_an_ovl_wg_the_record_does_not_name_is_someone_elses(existing):
    existing(WIREGUARD_NETNS)
    p = params(SECRET)
    _host_preflight.check_input(p)
    with pytest.raises(InputError, match=r"netns ovl-wg exists but netfleet\.overlay did not create it"):
        _host_preflight.check_wireguard_netns(p, _records.empty())
    record = {**_records.empty(), "wireguard": _records.wireguard_entry()}
    _host_preflight.check_wireguard_netns(p, record)  # ours
    _host_preflight.check_wireguard_netns({**p, "wireguard": None}, _records.empty())  # not wanted: left alone


# --- the record -----------------------------------------------------------------------------------------------


def test_the_record_keeps_the_tunnel_and_refuses_another_netns():
    record = {**_records.empty(), "wireguard": _records.wireguard_entry()}
    assert _records.decode(_records.encode(record)) == record
    with pytest.raises(_records.RecordError, match=r"wireguard\.netns: 'ovl-1' is not ovl-wg"):
        _records.decode(_records.encode({**record, "wireguard": {"netns": "ovl-1", "ifname": "wg-overlay"}}))
    with pytest.raises(_records.RecordError, match=r"wireguard: unknown key\(s\) 'pid'"):
        _records.decode(_records.encode({**record, "wireguard": {**_records.wireguard_entry(), "pid": 1}}))


def test_the_run_records_the_tunnel_it_makes():
    c = HostConverger(params(SECRET), check_mode=False)
    _host_preflight.check_input(c.p)
    c._intend(c.p["networks"])
    assert c.record["wireguard"] == {"netns": WIREGUARD_NETNS, "ifname": "wg-overlay"}
    # the peers of an encrypted network are its tunnel addresses, without this host's own
    assert c.record["peers"]["payments"] == {"10.255.0.2": "h2"}


# --- the vxlan device of an encrypted network -------------------------------------------------------------------


def _vxlan_params(monkeypatch, net) -> dict:
    seen = {}

    def fake_object(self, handles, cls, p):
        if cls is Vxlan:
            seen.update(p)
        return {"changed": False, "commands": []}

    monkeypatch.setattr(HostConverger, "_object", fake_object)
    monkeypatch.setattr(HostConverger, "tables", lambda self, handles, net: {})
    monkeypatch.setattr(_host._host_diff, "network_views", lambda net, objects, out: {})
    c = HostConverger(params(net), check_mode=True)
    _host_preflight.check_input(c.p)
    c.network(None, c.p["networks"][0], {"vtep_dev": "eth0"})
    return seen


def test_an_encrypted_networks_vxlan_is_made_in_ovl_wg_on_the_tunnel_address(monkeypatch):
    seen = _vxlan_params(monkeypatch, SECRET)
    assert (seen["underlay_netns"], seen["local"], seen["dev"], seen["netns"]) == (
        WIREGUARD_NETNS,
        "10.255.0.1",
        None,
        "ovl-900",
    )
    seen = _vxlan_params(monkeypatch, PLAIN)  # unchanged: on the underlay, bound to the VTEP and its device
    assert (seen["underlay_netns"], seen["local"], seen["dev"]) == (None, VTEP, "eth0")


class FakeNs:
    """A namespace with links and addresses (what Vxlan's underlay checks read)."""

    def __init__(self, label, addrs=()):
        self.label = label
        self._addrs = list(addrs)

    def links(self):
        return [{"index": 1}]

    def addresses(self, index):
        return [{"address": a} for a in self._addrs]

    def link_index(self, name):
        return None


def test_vxlan_checks_local_in_its_underlay_netns(monkeypatch):
    monkeypatch.setattr(nl, "netns_exists", lambda name: name == WIREGUARD_NETNS)
    handles = Handles()
    handles._open = {None: FakeNs("the host namespace", [VTEP]), WIREGUARD_NETNS: FakeNs("netns ovl-wg")}
    base = {"name": "vxlan0", "netns": "ovl-900", "vni": 900, "port": 4789, "dev": None, "learning": False}
    base.update(proxy=True, master=None, mtu=None, state="present", underlay_netns=WIREGUARD_NETNS)
    vx = Vxlan({**base, "local": "10.255.0.1"}, handles, check_mode=True)
    vx.validate()
    with pytest.raises(InputError, match=r"local: 10.255.0.1 is not an address of netns ovl-wg \(underlay_netns\)"):
        vx._underlay_checks()
    handles.foresee(WIREGUARD_NETNS, foreseen_address("10.255.0.1"))  # the tunnel's converge would add it
    vx._underlay_checks()
    vx = Vxlan({**base, "local": VTEP, "underlay_netns": None}, handles, check_mode=True)
    vx.validate()
    vx._underlay_checks()
    vx = Vxlan({**base, "local": "10.255.0.1", "underlay_netns": "ovl-7"}, handles, check_mode=True)
    vx.validate()
    with pytest.raises(InputError, match="underlay_netns: netns ovl-7 does not exist; create it first"):
        vx._underlay_checks()
    vx = Vxlan({**base, "local": "10.255.0.1", "underlay_netns": "ovl-900"}, handles, check_mode=True)
    with pytest.raises(InputError, match="underlay_netns: ovl-900 is also netns"):
        vx.validate()
    vx = Vxlan({**base, "local": "10.255.0.1", "underlay_netns": "a/b"}, handles, check_mode=True)
    with pytest.raises(InputError, match="underlay_netns: 'a/b'"):
        vx.validate()


def test_switching_encrypted_recreates_the_vxlan_device():
    vx = Vxlan({"vni": 900, "port": 4789, "local": "10.255.0.1", "dev": None, "proxy": True}, None)
    before = {"vni": 900, "port": 4789, "local": VTEP, "dev": "eth0", "proxy": True}
    assert vx._reason(before) == "local 198.18.1.1 -> 10.255.0.1, dev eth0 -> None"


# --- the allowlist ----------------------------------------------------------------------------------------------


def _firewall_table(*networks, **extra):
    c = HostConverger(params(*networks, firewall=True, **extra), check_mode=True)
    _host_preflight.check_input(c.p)
    return c.wanted_firewall(c.p["networks"])


def test_the_wireguard_port_is_open_to_the_tunnels_peers_only_and_vxlan_to_the_plain_networks():
    secret_port = {**SECRET, "port": 4790}  # used by the encrypted network only: never opened on the underlay
    table = _firewall_table(PLAIN, secret_port)
    assert table["sets"]["ports"]["elements"] == [4789]
    assert table["sets"]["vteps"]["elements"] == ["198.18.1.2"]
    assert table["sets"]["wg_vteps"]["elements"] == ["198.18.1.2", "198.18.1.3"]
    assert table["rules"]["input"] == [
        "udp dport @ports ip daddr 198.18.1.1 ip saddr @vteps accept",
        "udp dport @ports counter drop",
        "udp dport 51820 ip daddr 198.18.1.1 ip saddr @wg_vteps accept",
        "udp dport 51820 counter drop",
    ]
    assert _firewall.summary(table)["wireguard"] == {"allow": ["198.18.1.2", "198.18.1.3"], "port": 51820}
    assert "other" not in _firewall.summary(table)


def test_a_host_with_encrypted_networks_only_opens_the_wireguard_port_alone():
    table = _firewall_table(SECRET, wireguard_allow=["198.18.1.3"])
    assert set(table["sets"]) == {"wg_vteps"}
    assert table["sets"]["wg_vteps"]["elements"] == ["198.18.1.3"]
    assert table["rules"]["input"] == [
        "udp dport 51820 ip daddr 198.18.1.1 ip saddr @wg_vteps accept",
        "udp dport 51820 counter drop",
    ]


def test_a_plain_host_keeps_exactly_its_table():
    table = _firewall_table(PLAIN, wireguard=None)
    assert table == _firewall.wanted(VTEP, ["198.18.1.2"], [4789])
    assert "wg_vteps" not in table["sets"]


def test_the_wireguard_port_and_a_vxlan_port_collide():
    with pytest.raises(InputError, match="wireguard_port: 4789 is also a VXLAN port of an unencrypted network"):
        _firewall_table(PLAIN, SECRET, wireguard={**WG, "port": 4789})


def test_status_reads_the_wireguard_part_back_as_intact():
    table = _firewall.wanted(VTEP, ["198.18.1.2"], [4789], ["198.18.1.3"], 51820)

    class FakeNft:
        binary = "nft"

        def read(self):
            return copy.deepcopy(table)

    status = _firewall.status(FakeNft())
    assert status["intact"] is True and status["vtep"] == VTEP
    assert status["wireguard"] == {"allow": ["198.18.1.3"], "port": 51820}
    table = _firewall.wanted(VTEP, [], [], ["198.18.1.3"], 51820)  # encrypted networks only
    status = _firewall.status(FakeNft())
    assert status["intact"] is True and status["vtep"] == VTEP and status["ports"] == []
    table["rules"]["input"].pop()  # the drop deleted by hand
    assert _firewall.status(FakeNft())["intact"] is False


# --- the run and the WireGuard engine (a stub of its Tunnel) ---------------------------------------------------


class StubTunnel:
    calls: list = []
    fail: str | None = None

    def __init__(self, run_command, check_mode, warnings, state_dir, no_log_values=None):
        self.check_mode = check_mode

    def converge(self, handles, want):
        StubTunnel.calls.append(want)
        if StubTunnel.fail:
            raise ModuleError(StubTunnel.fail, commands=["a", "b"], commands_done=["a"])
        return {"changed": True, "commands": ["wg set wg-overlay listen-port 51820"], "summary": "wireguard +2 peers"}

    def facts(self):
        return {"implementation": "userspace", "address": "10.255.0.1"}


class StubEngine:
    Tunnel = StubTunnel


@pytest.fixture
def stub_engine(monkeypatch):
    StubTunnel.calls = []
    StubTunnel.fail = None
    monkeypatch.setattr(_host, "_wireguard_engine", lambda: StubEngine)


def test_the_tunnel_converge_is_reported_and_foreseen_in_check_mode(stub_engine, monkeypatch, tmp_path):
    monkeypatch.setattr(nl, "netns_exists", lambda name: False)
    c = HostConverger(params(SECRET), check_mode=True, state_dir=str(tmp_path))
    _host_preflight.check_input(c.p)
    handles = Handles()
    c.wireguard(handles, c.p["wireguard"])
    assert StubTunnel.calls == [c.p["wireguard"]]
    assert c.changed and c.commands == ["wg set wg-overlay listen-port 51820"]
    assert handles.foreseen(WIREGUARD_NETNS, None)
    assert handles.foreseen(WIREGUARD_NETNS, foreseen_address("10.255.0.1"))
    assert c.summary(c.p["networks"]).endswith("wireguard +2 peers")


def test_a_tunnel_failure_names_wireguard(stub_engine, tmp_path):
    StubTunnel.fail = "wireguard-go not found"
    c = HostConverger(params(SECRET), check_mode=False, state_dir=str(tmp_path))
    with pytest.raises(TunnelError, match=r"^wireguard: wireguard-go not found"):
        c.wireguard(Handles(), None)
    assert c.changed and c.commands == ["a"]  # what the engine applied before it failed
    StubTunnel.fail = "wireguard: wg set: exited 1"
    with pytest.raises(TunnelError, match=r"^wireguard: wg set: exited 1$"):
        c.wireguard(Handles(), None)


def test_the_teardown_runs_only_when_a_tunnel_or_its_keys_may_be_left(monkeypatch, tmp_path):
    monkeypatch.setattr(nl, "netns_exists", lambda name: False)
    c = HostConverger(params(PLAIN, wireguard=None), check_mode=False, state_dir=str(tmp_path))
    assert c._had_tunnel(_records.empty()) is False  # a plain host never loads the engine
    assert c._had_tunnel({**_records.empty(), "wireguard": _records.wireguard_entry()}) is True
    (tmp_path / "wireguard").mkdir()
    assert c._had_tunnel(_records.empty()) is True  # keys left
    monkeypatch.setattr(nl, "netns_exists", lambda name: name == WIREGUARD_NETNS)
    assert c._had_tunnel(_records.empty()) is False  # an ovl-wg of someone else's is never torn down


def test_an_unreachable_peer_keeps_its_entries_by_its_tunnel_address(monkeypatch):
    """preserve_vteps names VTEPs; an encrypted network's entries point at tunnel addresses: those of the tunnel's
    peers at the preserved VTEPs are kept (and recorded), the others follow the plan."""
    current = {
        "fdb": [("02:42:0a:5a:00:03", "10.255.0.2"), ("02:42:0a:5a:00:04", "10.255.0.3")],
        "neigh": [("10.90.0.3", "02:42:0a:5a:00:03"), ("10.90.0.4", "02:42:0a:5a:00:04")],
    }
    monkeypatch.setattr(_host._table, "read", lambda ns, spec, index: list(current[spec.name]))

    class Ns:
        def link_index(self, name):
            return 7

    c = HostConverger(params({**SECRET, "fdb": [], "neigh": []}, preserve_vteps=["198.18.1.3"]), check_mode=True)
    _host_preflight.check_input(c.p)
    net = c.p["networks"][0]
    assert c._preserved(net) == {"10.255.0.3"}
    out = c.tables(lambda netns: Ns(), net)
    assert [(e["mac"], e["dst"]) for e in out["fdb"]["after"]] == [("02:42:0a:5a:00:04", "10.255.0.3")]
    assert c._peers(net, {"10.255.0.3": "h3"}) == {"10.255.0.2": "h2", "10.255.0.3": "h3"}
    assert c._preserved(c.p["networks"][0] | {"encrypted": False}) == {"198.18.1.3"}


def test_the_diff_marks_an_encrypted_network_and_names_the_tunnel_it_removes():
    objects = {"netns": {"before": {}, "after": {"name": "ovl-900"}}, "bridge": {"before": {}, "after": {}}}
    objects.update(vxlan={"before": {}, "after": {"local": "10.255.0.1"}}, endpoints={})
    tables = {"fdb": {"before": [], "after": []}, "neigh": {"before": [], "after": []}}
    views = _host._host_diff.network_views(SECRET, objects, tables)
    assert views["after"]["encrypted"] is True and views["after"]["vxlan"] == {"local": "10.255.0.1"}
    assert "encrypted" not in _host._host_diff.network_views(PLAIN, objects, tables)["after"]
    text = _host._host_diff.removed_text({"networks": [], "endpoints": []}, {}, tunnel=True)
    assert text == "remove the WireGuard tunnel (wg-overlay in netns ovl-wg, its daemon and keys)\n"
    assert _host._host_diff.removed_text({"networks": [], "endpoints": []}, {}) == ""
