# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the WireGuard engine (_wireguard) with a fake kernel, a fake ``wg`` and a fake systemd: the kernel
and the userspace paths, check mode, idempotence, peers, rotation, teardown, and no private key anywhere."""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import os

import pytest

from ansible_collections.netfleet.overlay.plugins.module_utils import _requirements, _wireguard
from ansible_collections.netfleet.overlay.plugins.module_utils._model import WIREGUARD_IFNAME, WIREGUARD_NETNS
from ansible_collections.netfleet.overlay.plugins.module_utils._objects import Handles, Unmade
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl import namespace as nl

IF, NS = WIREGUARD_IFNAME, WIREGUARD_NETNS


def key(seed: str) -> str:
    return base64.b64encode(hashlib.sha256(seed.encode()).digest()).decode()


def pub(private: str) -> str:
    return key("pub:" + private)


PEER2 = {"host": "h2", "public_key": key("h2"), "endpoint": "198.18.1.2:51820", "address": "10.255.0.2"}
PEER3 = {"host": "h3", "public_key": key("h3"), "endpoint": "198.18.1.3:51820", "address": "10.255.0.3"}


def want(*peers, rotate=False, mtu=1440, port=51820):
    return {"address": "10.255.0.1", "prefixlen": 16, "port": port, "mtu": mtu, "rotate": rotate, "peers": list(peers)}


# --- a fake kernel -------------------------------------------------------------------------------------------------


class FakeNs:
    def __init__(self, world, name):
        self.world, self.name = world, name
        self.label = f"netns {name}" if name else "the host namespace"
        self.devs: dict = {}
        self.addrs: dict = {}

    def link(self, ifname):
        dev = self.devs.get(ifname)
        return dict(dev) if dev else None

    def links(self):
        return [dict(d) for d in self.devs.values()]

    def link_index(self, ifname):
        return self.devs[ifname]["index"] if ifname in self.devs else None

    def addresses(self, index):
        return [dict(a) for a in self.addrs.get(index, [])]

    def _wrote(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def add(self, ifname, kind, mtu=1500, up=False):
        self.world.index += 1
        self.devs[ifname] = {"index": self.world.index, "ifname": ifname, "kind": kind, "mtu": mtu, "up": up}
        self.world.log.append(("add", self.name, ifname, kind, mtu))

    def link_add(self, ifname, kind, **attrs):
        self.add(ifname, kind, attrs.get("mtu", 1420))

    def link_set(self, label, index, **attrs):
        name = next(n for n, d in self.devs.items() if d["index"] == index)
        dev = self.devs[name]
        if "net_ns_fd" in attrs:
            target = self.world.ns[attrs["net_ns_fd"]]
            target.devs[name] = self.devs.pop(name)
            target.addrs[index] = self.addrs.pop(index, [])
            self.world.log.append(("move", self.name, name, attrs["net_ns_fd"]))
            return
        if "mtu" in attrs:
            dev["mtu"] = attrs["mtu"]
        if attrs.get("state") == "up":
            dev["up"] = True
        self.world.log.append(("set", self.name, name, tuple(sorted(attrs))))

    def link_del(self, ifname, index):
        self.devs.pop(ifname, None)
        self.world.log.append(("del", self.name, ifname))

    def addr_add(self, ifname, index, address, prefixlen):
        self.addrs.setdefault(index, []).append({"address": address, "prefixlen": int(prefixlen), "family": 4})

    def addr_del(self, ifname, index, address, prefixlen):
        self.addrs[index] = [a for a in self.addrs.get(index, []) if a["address"] != address]


class FakeWorld:
    """Namespaces, a fake ``wg`` (one device's key, port and peers), a fake systemd running wireguard-go."""

    def __init__(self, tmp_path):
        self.index = 10
        self.log: list = []
        self.ns: dict = {}
        self.ns[None] = FakeNs(self, None)
        self.ns[None].add("lo", None, 65536, True)
        self.ns[None].add("eth0", None, 1500, True)
        self.commands: list = []
        self.device = None  # {"private", "port", "peers"} of wg-overlay
        self.daemon = False
        self.genkeys = 0
        self.fail_set = False
        self.uapi = tmp_path / "uapi"
        self.uapi.mkdir()

    # the kernel's named namespaces
    def netns_create(self, name):
        self.ns[name] = FakeNs(self, name)
        self.ns[name].add("lo", None, 65536, False)

    def netns_remove(self, name):
        self.ns.pop(name, None)
        if self.daemon is False:
            self.device = None

    def wg_link(self):
        for ns in self.ns.values():
            if IF in ns.devs:
                return ns.devs[IF]
        return None

    # run_command
    def run(self, args, data=None, **_kw):
        self.commands.append(list(args))
        args = list(args)
        if args[0] == "nsenter":
            assert args[1] == f"--net=/run/netns/{NS}"
            args = args[2:]
        tool = os.path.basename(args[0])
        if tool == "wg":
            return self.wg(args[1:], data)
        if tool == "systemctl":
            if args[1] == "is-active":
                return (0 if self.daemon else 3), "", ""
            if args[1] == "stop":
                self.daemon = False
                self.kill_tun()
                return 0, "", ""
            return 0, "", ""
        if tool == "systemd-run":
            self.daemon = True
            self.ns[None].add(IF, "tun", 1420)
            (self.uapi / f"{IF}.sock").touch()
            self.device = {"private": None, "port": 0, "peers": {}}
            return 0, "", ""
        raise AssertionError(f"unexpected command {args}")

    def kill_tun(self):
        for ns in self.ns.values():
            if ns.devs.get(IF, {}).get("kind") == "tun":
                del ns.devs[IF]
        self.device = None
        (self.uapi / f"{IF}.sock").unlink(missing_ok=True)

    def wg(self, args, data):
        if args == ["genkey"]:
            self.genkeys += 1
            return 0, key(f"private-{self.genkeys}") + "\n", ""
        if args == ["pubkey"]:
            return 0, pub(data.strip()) + "\n", ""
        if self.device is None:
            if self.wg_link() is not None and self.wg_link()["kind"] == "wireguard":
                self.device = {"private": None, "port": 0, "peers": {}}
            else:
                return 1, "", "Unable to access interface: No such device\n"
        if args[:3] == ["show", IF, "dump"]:
            d = self.device
            priv = d["private"] or "(none)"
            lines = [f"{priv}\t{pub(d['private']) if d['private'] else '(none)'}\t{d['port']}\toff"]
            for k, p in d["peers"].items():
                lines.append(f"{k}\t(none)\t{p['endpoint']}\t{p['allowed']}\t0\t0\t0\t{p['keepalive']}")
            return 0, "\n".join(lines) + "\n", ""
        if args[:2] == ["set", IF]:
            if self.fail_set:  # what wg prints for a key it cannot use: the key itself
                with open(args[args.index("private-key") + 1], encoding="ascii") as handle:
                    return 1, "", f"Key is not the correct length or format: `{handle.read().strip()}'\n"
            words = args[2:]
            i = 0
            while i < len(words):
                if words[i] == "private-key":
                    with open(words[i + 1], encoding="ascii") as handle:
                        self.device["private"] = handle.read().strip()
                    i += 2
                elif words[i] == "listen-port":
                    self.device["port"] = int(words[i + 1])
                    i += 2
                elif words[i] == "peer":
                    k = words[i + 1]
                    if words[i + 2] == "remove":
                        self.device["peers"].pop(k, None)
                        i += 3
                        continue
                    peer = {}
                    i += 2
                    while i < len(words) and words[i] != "peer":
                        peer[words[i]] = words[i + 1]
                        i += 2
                    self.device["peers"][k] = {
                        "endpoint": peer["endpoint"],
                        "allowed": peer["allowed-ips"],
                        "keepalive": peer["persistent-keepalive"],
                    }
                else:
                    raise AssertionError(f"wg set word {words[i]}")
            return 0, "", ""
        raise AssertionError(f"unexpected wg {args}")


class FakeHandles(Handles):
    def __init__(self, world):
        super().__init__()
        self.world = world

    def __call__(self, name):
        if (name, None) in self._foreseen:
            return Unmade(name)
        return self.world.ns[name]

    def forget(self, name):
        pass


@pytest.fixture
def world(tmp_path, monkeypatch):
    w = FakeWorld(tmp_path)
    monkeypatch.setattr(nl, "netns_exists", lambda name: name in w.ns)
    monkeypatch.setattr(nl, "netns_create", w.netns_create)
    monkeypatch.setattr(nl, "netns_remove", w.netns_remove)
    monkeypatch.setattr(_wireguard, "wg_binary", lambda: "/usr/bin/wg")
    monkeypatch.setattr(_wireguard, "go_binary", lambda: "/usr/bin/wireguard-go")
    monkeypatch.setattr(_wireguard, "UAPI_DIR", str(w.uapi))
    monkeypatch.setattr(_wireguard, "kernel_available", lambda *a, **k: False)
    w.state = str(tmp_path / "state")
    return w


def converge(world, wanted, check=False, kernel=False, warnings=None):
    tunnel = _wireguard.Tunnel(
        world.run, check, warnings if warnings is not None else [], world.state, systemd=True, kernel=kernel
    )
    tunnel.namespace = lambda name: world.ns[name]
    with FakeHandles(world) as handles:
        result = tunnel.converge(handles, wanted)
    return result, tunnel


def private_keys(world) -> list[str]:
    found = []
    for name in (_wireguard.PRIVATE, _wireguard.NEXT):
        path = os.path.join(world.state, "wireguard", name)
        if os.path.exists(path):
            with open(path, encoding="ascii") as handle:
                found.append(handle.read().strip())
    return found + [key(f"private-{n}") for n in range(1, world.genkeys + 1)]


def assert_no_private_key(world, *things):
    text = json.dumps(things, default=str)
    for secret in private_keys(world):
        assert secret not in text
    for args in world.commands:
        for secret in private_keys(world):
            assert secret not in " ".join(args)


# --- the userspace path --------------------------------------------------------------------------------------------


def test_userspace_first_run_makes_everything_in_order_and_a_second_changes_nothing(world):
    result, tunnel = converge(world, want(PEER2))
    assert result["changed"]
    cmds = result["commands"]
    assert cmds[0].startswith("wg genkey > ")
    assert cmds[1] == f"ip netns add {NS}"
    assert "wireguard-go -f wg-overlay" in cmds[2]
    assert cmds[3:9] == [
        "ip link set wg-overlay mtu 1440",  # in the host netns, before the move
        f"ip link set wg-overlay netns {NS}",
        f"ip -n {NS} link set lo up",
        f"ip -n {NS} addr add 10.255.0.1/16 dev wg-overlay",
        f"ip -n {NS} link set wg-overlay up",
        f"wg set wg-overlay private-key {world.state}/wireguard/private.key listen-port 51820"
        f" peer {PEER2['public_key']} endpoint 198.18.1.2:51820 allowed-ips 10.255.0.2/32 persistent-keepalive 25",
    ]
    assert "started wireguard-go" in result["summary"]
    assert IF not in world.ns[None].devs and world.ns[NS].devs[IF]["mtu"] == 1440 and world.ns[NS].devs[IF]["up"]
    facts = tunnel.facts()
    assert facts["implementation"] == "userspace"
    assert facts["public_key"] == pub(private_keys(world)[0])
    assert facts["address"] == "10.255.0.1" and facts["port"] == 51820
    assert facts["peers"] == [
        {"public_key": PEER2["public_key"], "endpoint": "198.18.1.2:51820", "allowed_ips": ["10.255.0.2/32"]}
    ]
    assert "private_key" not in json.dumps(facts)
    mode = os.stat(os.path.join(world.state, "wireguard", "private.key")).st_mode & 0o777
    assert mode == 0o600 and os.stat(os.path.join(world.state, "wireguard")).st_mode & 0o777 == 0o700
    again = converge(world, want(PEER2))[0]
    assert again == {"changed": False, "commands": [], "summary": ""}
    assert_no_private_key(world, result, again, facts)


def test_check_mode_predicts_the_first_run_and_changes_nothing(world):
    predicted = converge(world, want(PEER2), check=True)[0]
    assert set(world.ns) == {None} and not os.path.exists(world.state) and not world.daemon
    real = converge(world, want(PEER2))[0]
    assert predicted["commands"] == real["commands"]
    assert predicted["changed"] and real["changed"]


def test_a_dead_daemon_is_started_again_and_reconfigured(world):
    converge(world, want(PEER2))
    world.daemon = False
    world.kill_tun()  # wireguard-go died: its TUN went with it
    result = converge(world, want(PEER2))[0]
    assert any("wireguard-go -f wg-overlay" in c for c in result["commands"])
    assert f"ip netns add {NS}" not in result["commands"]
    assert world.device["peers"] and world.device["private"] == private_keys(world)[0]
    assert converge(world, want(PEER2))[0]["changed"] is False


def test_an_interrupted_run_moves_the_daemons_tun_left_in_the_host_netns(world):
    world.netns_create(NS)
    world.run(["systemd-run"])  # the daemon runs, its TUN is still in the host netns
    result = converge(world, want(PEER2))[0]
    assert not any("wireguard-go -f" in c for c in result["commands"])
    assert f"ip link set wg-overlay netns {NS}" in result["commands"]
    assert IF in world.ns[NS].devs


# --- the kernel path -----------------------------------------------------------------------------------------------


def test_kernel_wireguard_is_made_in_the_host_netns_moved_and_configured_inside_ovl_wg(world):
    result, tunnel = converge(world, want(PEER2), kernel=True)
    assert "ip link add wg-overlay mtu 1440 type wireguard" in result["commands"]
    assert ("add", None, IF, "wireguard", 1440) in world.log
    assert ("move", None, IF, NS) in world.log
    assert "ip link set wg-overlay mtu 1440" not in result["commands"]  # given at creation
    wg_calls = [c for c in world.commands if c[0] == "nsenter"]
    assert wg_calls and all(c[:2] == ["nsenter", f"--net=/run/netns/{NS}"] for c in wg_calls)
    assert not any(c[0] in ("systemctl", "systemd-run") for c in world.commands)
    assert tunnel.facts()["implementation"] == "kernel"
    assert converge(world, want(PEER2), kernel=True)[0]["changed"] is False
    down = converge(world, None, kernel=True)[0]
    assert f"ip -n {NS} link del wg-overlay" in down["commands"] and NS not in world.ns


# --- peers, MTU, port, rotation ------------------------------------------------------------------------------------


def test_peers_follow_membership_and_only_the_changed_peers_are_named(world):
    converge(world, want(PEER2))
    added = converge(world, want(PEER2, PEER3))[0]
    assert added["commands"] == [
        f"wg set wg-overlay peer {PEER3['public_key']} endpoint 198.18.1.3:51820 allowed-ips 10.255.0.3/32"
        " persistent-keepalive 25"
    ]
    assert "peers +1 -0 ~0" in added["summary"]
    moved = dict(PEER2, endpoint="198.18.9.2:51820")
    changed = converge(world, want(moved, PEER3))[0]
    assert changed["commands"] == [
        f"wg set wg-overlay peer {PEER2['public_key']} endpoint 198.18.9.2:51820 allowed-ips 10.255.0.2/32"
        " persistent-keepalive 25"
    ]
    removed = converge(world, want(moved))[0]
    assert removed["commands"] == [f"wg set wg-overlay peer {PEER3['public_key']} remove"]
    assert set(world.device["peers"]) == {PEER2["public_key"]}
    nokey = converge(world, want(moved, dict(PEER3, public_key=None)))[0]  # a peer without a known key: left out
    assert nokey["changed"] is False


def test_mtu_address_and_port_changes_are_applied_in_place(world):
    converge(world, want(PEER2))
    result = converge(world, dict(want(PEER2, mtu=1400, port=51900), address="10.255.0.9"))[0]
    assert result["commands"] == [
        f"ip -n {NS} link set wg-overlay mtu 1400",
        f"ip -n {NS} addr del 10.255.0.1/16 dev wg-overlay",
        f"ip -n {NS} addr add 10.255.0.9/16 dev wg-overlay",
        "wg set wg-overlay listen-port 51900",
    ]


def test_rotation_switches_key_and_peer_keys_in_one_wg_set_then_promotes_next_key(world):
    converge(world, want(PEER2))
    old = private_keys(world)[0]
    staged = _wireguard.key_state(world.run, world.state, rotate=True)
    assert staged["public_key"] == pub(old) and staged["public_key_next"]
    nxt = dict(PEER2, public_key=key("h2-next"))
    result, tunnel = converge(world, want(nxt, rotate=True))
    wg_set = [c for c in result["commands"] if c.startswith("wg set")]
    assert wg_set == [
        f"wg set wg-overlay private-key {world.state}/wireguard/next.key peer {PEER2['public_key']} remove"
        f" peer {nxt['public_key']} endpoint 198.18.1.2:51820 allowed-ips 10.255.0.2/32 persistent-keepalive 25"
    ]
    assert result["commands"][-1].startswith("mv ") and "rotated" in result["summary"]
    assert not os.path.exists(os.path.join(world.state, "wireguard", "next.key"))
    facts = tunnel.facts()
    assert facts["public_key"] == staged["public_key_next"] and facts["public_key_next"] is None
    assert world.device["private"] != old
    assert converge(world, want(nxt, rotate=True))[0]["changed"] is False  # nothing staged: nothing to rotate
    assert_no_private_key(world, result, facts, staged)


# --- teardown -----------------------------------------------------------------------------------------------------


def test_teardown_stops_the_daemon_removes_the_netns_and_the_keys(world):
    converge(world, want(PEER2))
    predicted = converge(world, None, check=True)[0]
    assert world.daemon and NS in world.ns
    result = converge(world, None)[0]
    assert predicted["commands"] == result["commands"]
    assert result["commands"][0] == f"systemctl stop {_wireguard.UNIT}"
    assert f"ip netns del {NS}" in result["commands"]
    assert not world.daemon and NS not in world.ns and not os.path.exists(os.path.join(world.state, "wireguard"))
    assert converge(world, None)[0] == {"changed": False, "commands": [], "summary": ""}


# --- errors and secrets -------------------------------------------------------------------------------------------


def test_a_failed_wg_set_says_what_failed_without_the_key(world):
    world.fail_set = True
    with pytest.raises(_wireguard.WireGuardError) as err:
        converge(world, want(PEER2))
    assert "wg set exited 1: Key is not the correct length or format: `(a private key)'" in str(err.value)
    assert err.value.details["commands_done"][-1] == f"ip -n {NS} link set wg-overlay up"
    assert_no_private_key(world, str(err.value), err.value.details)


def test_a_foreign_device_called_wg_overlay_is_refused(world):
    world.netns_create(NS)
    world.ns[NS].add(IF, "veth")
    with pytest.raises(_wireguard.WireGuardError, match="is a veth device, not WireGuard"):
        converge(world, want(PEER2))


def test_a_key_file_that_holds_no_key_is_an_error(world):
    os.makedirs(os.path.join(world.state, "wireguard"), mode=0o700)
    os.chmod(world.state, 0o700)
    with open(os.path.join(world.state, "wireguard", "private.key"), "w", encoding="ascii") as handle:
        handle.write("not a key\n")
    os.chmod(os.path.join(world.state, "wireguard", "private.key"), 0o600)
    with pytest.raises(_wireguard.WireGuardError, match="does not hold a WireGuard key"):
        _wireguard.key_state(world.run, world.state)


def test_no_implementation_says_what_to_install(world, monkeypatch):
    monkeypatch.setattr(_wireguard, "go_binary", lambda: None)
    with pytest.raises(_wireguard.WireGuardError, match="package wireguard-go"):
        converge(world, want(PEER2))


# --- keys (the wireguard_key module) ------------------------------------------------------------------------------


def test_key_state_present_rotate_absent_and_check_mode(world):
    predicted = _wireguard.key_state(world.run, world.state, check_mode=True)
    assert predicted == {
        "changed": True,
        "public_key": None,
        "public_key_next": None,
        "commands": [f"wg genkey > {world.state}/wireguard/private.key"],
    }
    made = _wireguard.key_state(world.run, world.state)
    assert made["changed"] and made["public_key"] == pub(key("private-1"))
    assert _wireguard.key_state(world.run, world.state)["changed"] is False
    staged = _wireguard.key_state(world.run, world.state, rotate=True)
    assert staged["public_key_next"] == pub(key("private-2"))
    again = _wireguard.key_state(world.run, world.state, rotate=True)  # a staged key is kept
    assert again["changed"] is False and again["public_key_next"] == staged["public_key_next"]
    hidden: set = set()
    _wireguard.key_state(world.run, world.state, no_log_values=hidden)
    assert hidden == {key("private-1"), key("private-2")}
    gone = _wireguard.key_state(world.run, world.state, state="absent")
    assert gone["changed"] and gone["public_key"] is None
    assert not os.listdir(os.path.join(world.state, "wireguard"))
    assert_no_private_key(world, predicted, made, staged, again, gone)


# --- pure parts ---------------------------------------------------------------------------------------------------


def test_parse_dump_and_endpoints():
    text = (
        f"{key('x')}\t{key('y')}\t51820\toff\n"
        f"{key('p')}\t(none)\t[2001:db8::2]:51820\t10.255.0.2/32,fd00::2/128\t0\t0\t0\toff\n"
        f"{key('q')}\t(none)\t(none)\t(none)\t0\t0\t0\t25\n"
    )
    dump = _wireguard.parse_dump(text)
    assert dump["port"] == 51820
    assert dump["peers"][key("p")]["allowed_ips"] == ["10.255.0.2/32", "fd00::2/128"]
    assert dump["peers"][key("p")]["keepalive"] is None
    assert dump["peers"][key("q")] == {"public_key": key("q"), "endpoint": None, "allowed_ips": [], "keepalive": 25}
    assert _wireguard.endpoint_text("[2001:DB8::2]:51820") == "[2001:db8::2]:51820"
    assert _wireguard.endpoint_key("[2001:db8::2]:51820") == _wireguard.endpoint_key("[2001:DB8:0::2]:51820")
    assert _wireguard.host_prefix("fd00::2") == "fd00::2/128"
    with pytest.raises(_wireguard.WireGuardError, match="no interface line"):
        _wireguard.parse_dump("")
    with pytest.raises(_wireguard.WireGuardError, match="not ADDRESS:PORT"):
        _wireguard.endpoint_text("198.18.1.2")


def test_valid_key_and_kernel_detection(tmp_path):
    assert _wireguard.valid_key(key("a")) and not _wireguard.valid_key("abc") and not _wireguard.valid_key(None)
    assert not _wireguard.valid_key("!" * 44)
    mods = tmp_path / "lib" / "6.1.0"
    mods.mkdir(parents=True)
    (mods / "modules.dep").write_text("kernel/net/bridge/bridge.ko: kernel/net/llc/llc.ko\n")
    none = str(tmp_path / "nosys")
    assert not _wireguard.kernel_available(none, str(tmp_path / "lib"), "6.1.0")
    (mods / "modules.dep").write_text("kernel/drivers/net/wireguard/wireguard.ko.xz: kernel/lib/crypto/x.ko\n")
    assert _wireguard.kernel_available(none, str(tmp_path / "lib"), "6.1.0")
    (tmp_path / "sys").mkdir()
    assert _wireguard.kernel_available(str(tmp_path / "sys"), str(tmp_path / "nolib"), "6.1.0")
    assert _wireguard.implementation_available(kernel=True) == "kernel"
    assert _wireguard.implementation_available(kernel=False, go="/usr/bin/wireguard-go") == "userspace"


def test_requirement_wireguard_missing():
    base = {
        "pyroute2": True,
        "pyroute2_version": "0.9.7",
        "kernel": {"version": [6, 1], "vxlan": True},
        "vtep": "198.18.1.1",
    }
    needs = {"wireguard": True}
    assert "wireguard_missing" in _requirements.CODES
    ok = dict(base, wg="/usr/bin/wg", wireguard={"implementation": "userspace"})
    assert _requirements.unmet(ok, needs, "present") == []
    assert _requirements.unmet(dict(ok, wg=None), needs, "present") == ["wireguard_missing"]
    assert _requirements.unmet(dict(ok, wireguard={"implementation": None}), needs, "present") == ["wireguard_missing"]
    assert _requirements.unmet(dict(ok, wg=None), {}, "present") == []
    assert _requirements.unmet(dict(ok, wg=None), needs, "absent") == []


# --- kernel WireGuard that refuses its link: wireguard-go instead ---------------------------------------------------


def refuse_kernel_link(world, code):
    """The host namespace answers a ``wireguard`` link with ``code`` (the module is there, the link type is not)."""
    host = world.ns[None]
    plain = host.link_add

    def link_add(ifname, kind, **attrs):
        if kind == "wireguard":
            raise nl.NetlinkOpError(f"creating wireguard {ifname} in the host namespace: {os.strerror(code)}") from (
                OSError(code, os.strerror(code))
            )
        plain(ifname, kind, **attrs)

    host.link_add = link_add


def test_a_kernel_that_refuses_the_wireguard_link_falls_back_to_wireguard_go_with_a_warning(world):
    refuse_kernel_link(world, errno.EOPNOTSUPP)
    warnings: list = []
    result, tunnel = converge(world, want(PEER2), kernel=True, warnings=warnings)
    assert len(warnings) == 1 and "using wireguard-go instead" in warnings[0], warnings
    assert "Operation not supported" in warnings[0]
    cmds = result["commands"]
    add = cmds.index("ip link add wg-overlay mtu 1440 type wireguard")
    assert "wireguard-go -f wg-overlay" in cmds[add + 1] and cmds[add + 2] == f"ip link set wg-overlay netns {NS}"
    assert "made wg-overlay (userspace)" in result["summary"] and "refused" in result["summary"]
    assert world.daemon and IF not in world.ns[None].devs
    dev = world.ns[NS].devs[IF]
    assert dev["kind"] == "tun" and dev["mtu"] == 1440 and dev["up"], dev
    assert ("set", None, IF, ("mtu",)) in world.log  # the MTU given in the host netns, before the move
    assert list(world.device["peers"]) == [PEER2["public_key"]]
    assert tunnel.facts()["implementation"] == "userspace"
    warnings.clear()
    again = converge(world, want(PEER2), kernel=True, warnings=warnings)[0]
    assert again["changed"] is False and warnings == []  # the TUN is what is in use now
    assert_no_private_key(world, result, again, warnings)


@pytest.mark.parametrize("go", [True, False], ids=["EPERM", "no-wireguard-go"])
def test_no_fallback_on_another_error_or_without_wireguard_go(world, monkeypatch, go):
    refuse_kernel_link(world, errno.EPERM if go else errno.EOPNOTSUPP)
    if not go:
        monkeypatch.setattr(_wireguard, "go_binary", lambda: None)
    warnings: list = []
    with pytest.raises(_wireguard.WireGuardError) as failed:
        converge(world, want(PEER2), kernel=True, warnings=warnings)
    assert ("Operation not permitted" if go else "Operation not supported") in str(failed.value)
    assert warnings == [] and not world.daemon


# --- the rotation instant ------------------------------------------------------------------------------------------


def staged_rotation(world, **extra):
    converge(world, want(PEER2))
    _wireguard.key_state(world.run, world.state, rotate=True)
    return dict(want(dict(PEER2, public_key=key("h2-next")), rotate=True), **extra)


def test_a_rotation_switches_at_the_fleets_instant(world, monkeypatch):
    now, slept = 1000.0, []
    monkeypatch.setattr(_wireguard.time, "time", lambda: now)
    monkeypatch.setattr(_wireguard.time, "sleep", slept.append)
    warnings: list[str] = []
    result = converge(world, staged_rotation(world, switch_at=now + 2.5), warnings=warnings)[0]
    assert slept == [2.5] and warnings == [] and "rotated" in result["summary"]


def test_a_host_late_for_the_instant_switches_at_once_and_says_so(world, monkeypatch):
    monkeypatch.setattr(_wireguard.time, "time", lambda: 1000.0)
    monkeypatch.setattr(_wireguard.time, "sleep", lambda s: pytest.fail(f"slept {s}"))
    warnings: list[str] = []
    converge(world, staged_rotation(world, switch_at=996.5), warnings=warnings)
    assert warnings == [
        "wireguard: switched keys 3.5 s after this host's rotation instant (its run started late); its peers"
        " could not reach it with the new keys for that long"
    ]


def test_an_instant_too_far_away_is_not_waited_for(world, monkeypatch):
    monkeypatch.setattr(_wireguard.time, "time", lambda: 1000.0)
    monkeypatch.setattr(_wireguard.time, "sleep", lambda s: pytest.fail(f"slept {s}"))
    warnings: list[str] = []
    converge(world, staged_rotation(world, switch_at=1000.0 + 3600), warnings=warnings)
    assert len(warnings) == 1 and "is this host's clock right?" in warnings[0]
    assert world.device["private"] == private_keys(world)[0]  # switched all the same
