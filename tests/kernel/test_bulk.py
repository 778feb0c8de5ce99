# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bulk table path (_rtnl.neigh behind _table.read / _table.apply) against the plain pyroute2 path, in-kernel.

Two namespaces are built identically (same devices, MACs, addresses and foreign entries).  The same random plans
run through the bulk path in one and the plain path (``read_plain`` / ``apply_plain`` of tests/support/tables.py) in
the other; the results (``before``, ``after``, ``commands``, errors) and what ``bridge -j fdb show`` /
``ip -j neigh show`` list must be the same.  Also: per-entry kernel refusals named while the rest is applied, check
mode, 20k entries per table, and the bulk dump parser against pyroute2's decoding of the kernel's own bytes.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import random
from pathlib import Path

import pytest
from support import tables

from ansible_collections.netfleet.overlay.plugins.module_utils import _table as t
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl import namespace as nl
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl import neigh as b
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl.const import NTF_SELF
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl.wire import DUMP_DONE

pytestmark = pytest.mark.kernel

REPO = Path(__file__).resolve().parents[2]


LOCAL, LOCAL6 = "198.18.71.1", "2001:db8:71::1"
ZERO = "00:00:00:00:00:00"
# (device, vni, local address, MAC); the MACs are fixed so both namespaces list the same bridge-side entries
DEVICES = (("vxlan0", 256, LOCAL, "02:ee:00:00:00:01"), ("vxlan6", 258, LOCAL6, "02:ee:00:00:00:02"))
LOCALS = {dev: local for dev, _vni, local, _mac in DEVICES}
FOREIGN_MAC, DYN_MAC, STALE_IP = "02:ee:00:00:00:98", "02:ee:00:00:00:99", "10.213.9.9"


def build(nf, lab, role: str) -> str:
    """A namespace with underlay ul0, br0 and two vxlan devices, plus entries the collection does not own."""
    ns = lab.netns(role)
    lab.underlay(ns, addr_a=f"{LOCAL}/24")
    nf.ip(ns, "addr", "add", f"{LOCAL6}/64", "dev", "ul0", "nodad")
    nf.ip(ns, "link", "add", "br0", "address", "02:ee:00:00:00:10", "type", "bridge")
    for dev, vni, local, mac in DEVICES:
        nf.ip(ns, "link", "add", dev, "address", mac, "type", "vxlan", "id", str(vni), "dstport", "4789",
              "local", local, "dev", "ul0", "nolearning", "proxy")  # fmt: skip
        nf.ip(ns, "link", "set", dev, "up")
    nf.ip(ns, "link", "set", "vxlan0", "master", "br0")
    nf.ip(ns, "link", "set", "br0", "up")
    nf.sh("bridge", "-n", ns, "fdb", "add", FOREIGN_MAC, "dev", "vxlan0", "master", "static")
    nf.sh("bridge", "-n", ns, "fdb", "add", DYN_MAC, "dev", "vxlan0", "dst", "198.18.71.99", "self", "dynamic")
    nf.ip(ns, "neigh", "add", STALE_IP, "lladdr", DYN_MAC, "dev", "vxlan0", "nud", "stale")
    return ns


@pytest.fixture
def twins(lab, nf):
    """Two identical namespaces: (bulk, plain)."""
    return build(nf, lab, "bulk"), build(nf, lab, "plain")


def kernel_table(nf, ns: str, table: str, dev: str) -> list:
    """The whole table of ``dev`` as iproute2 lists it (JSON rows, sorted: the neighbour hash order is random)."""
    if table == "fdb":
        out = nf.sh("bridge", "-j", "-n", ns, "fdb", "show", "dev", dev).stdout
    else:
        out = nf.ip(ns, "-j", "neigh", "show", "dev", dev).stdout
    return sorted(json.loads(out or "[]"), key=lambda r: json.dumps(r, sort_keys=True))


def reconcile_plain(ns, spec, *, dev, state, wanted) -> dict:
    """_table.reconcile with the plain pyroute2 read and write."""
    index = ns.link_index(dev)
    result = t.plan(spec, state, wanted, tables.pairs(spec, tables.read_plain(ns, spec, index)), dev=dev, netns=ns.name)
    if result["ops"]:
        tables.apply_plain(ns, spec, index, result["ops"])
    return result


def renamed(value, old: str, new: str):
    """``value`` (a result dict, a list of messages) as JSON with namespace ``old`` called ``new``."""
    return json.loads(json.dumps(value).replace(old, new))


# --- random plans -------------------------------------------------------------------------------------------------


def random_entries(rnd: random.Random, spec, dev: str) -> list[dict]:
    """Raw entries over small pools, so that rounds overlap: same keys with new members, flood lists changing."""
    v6 = dev == "vxlan6"
    out, seen = [], set()
    for _i in range(rnd.randint(5, 40)):
        if spec.name == "fdb":
            mac = ZERO if rnd.random() < 0.2 else f"02:42:0a:d5:00:{rnd.randrange(1, 48):02x}"
            dst = f"2001:db8:71::{rnd.randrange(2, 30):x}" if v6 else f"198.18.71.{rnd.randrange(2, 30)}"
            dup = (mac, dst) if mac == ZERO else (mac,)
            entry = {"mac": mac, "dst": dst}
        else:
            ip = f"fd00:213::{rnd.randrange(1, 40):x}" if rnd.random() < 0.4 else f"10.213.0.{rnd.randrange(1, 60)}"
            dup = (ip,)
            entry = {"ip": ip, "mac": f"02:42:0a:d5:01:{rnd.randrange(1, 8):02x}"}
        if dup not in seen:
            seen.add(dup)
            out.append(entry)
    return out


STATES = ["overridden", "merged", "overridden", "replaced", "merged", "deleted", "deleted", "overridden", "replaced"]


@pytest.mark.parametrize("seed", [1, 2])
def test_random_plans_bulk_equals_plain(twins, nf, seed):
    bulk_name, plain_name = twins
    rnd = random.Random(seed)
    seen_commands = set()
    with nl.Namespace(bulk_name) as bulk, nl.Namespace(plain_name) as plain:
        for round_no, state in enumerate(STATES):
            for spec, dev in ((t.FDB, "vxlan0"), (t.FDB, "vxlan6"), (t.NEIGH, "vxlan0")):
                raw = random_entries(rnd, spec, dev)
                if state == "deleted":
                    if round_no % 2:  # delete some keys whole (no member given)
                        keys = dict.fromkeys(e[spec.key_field] for e in raw[:8])
                        raw = [{spec.key_field: key} for key in keys]
                    else:  # delete what is there
                        raw = tables.read_entries(bulk, spec, bulk.link_index(dev))[::2]
                local = LOCALS[dev] if spec is t.FDB else None
                wanted = t.normalize_entries(spec, raw, state=state, local=local)
                where = f"round {round_no} {state} {spec.name} {dev}"

                got = t.reconcile(bulk, spec, dev=dev, state=state, wanted=wanted, check_mode=False)
                want = reconcile_plain(plain, spec, dev=dev, state=state, wanted=wanted)
                assert got == renamed(want, plain_name, bulk_name), where
                assert kernel_table(nf, bulk_name, spec.name, dev) == kernel_table(nf, plain_name, spec.name, dev), (
                    where
                )
                index = bulk.link_index(dev)
                assert tables.read_entries(bulk, spec, index) == tables.read_plain(bulk, spec, index), where
                assert sorted(tables.read_entries(bulk, spec, index), key=tables.sort_key(spec)) == got["after"], where
                # the same again changes nothing, on both paths
                again = t.reconcile(bulk, spec, dev=dev, state=state, wanted=wanted, check_mode=False)
                assert again == renamed(reconcile_plain(plain, spec, dev=dev, state=state, wanted=wanted),
                                        plain_name, bulk_name), where  # fmt: skip
                assert (again["changed"], again["before"], again["after"]) == (False, got["after"], got["after"])
                seen_commands.update(command_kind(command) for command in got["commands"])
    # the plans covered every kind of write, and left the foreign entries where they were
    assert seen_commands >= {"fdb replace", "fdb append", "fdb del", "neigh replace", "neigh del", "v6"}, seen_commands
    fdb = kernel_table(nf, bulk_name, "fdb", "vxlan0")
    assert any(r["mac"] == FOREIGN_MAC and r.get("master") == "br0" for r in fdb)
    assert any(r["mac"] == DYN_MAC and r.get("dst") == "198.18.71.99" for r in fdb)
    assert any(r["dst"] == STALE_IP for r in kernel_table(nf, bulk_name, "neigh", "vxlan0"))


def command_kind(command: str) -> str:
    """``bridge -n NS fdb replace ...`` -> ``fdb replace``; an IPv6 neighbour -> ``v6``."""
    words = command.split()
    return "v6" if words[3] == "neigh" and ":" in words[5] else f"{words[3]} {words[4]}"


# --- per-entry refusals ---------------------------------------------------------------------------------------------


def ops_for(spec, entries, ns_name, dev="vxlan0"):
    """A merged plan on an empty table: one upsert per entry."""
    return t.plan(spec, "merged", entries, [], dev=dev, netns=ns_name)["ops"]


def test_refused_entries_are_named_and_the_rest_applied(twins, nf):
    bulk_name, plain_name = twins
    # an IPv6 destination on an IPv4 vxlan device: EAFNOSUPPORT; IPv6 neighbours where IPv6 is off: refused
    good_fdb = [{"mac": f"02:42:0a:d5:02:{i:02x}", "dst": f"198.18.71.{i + 2}"} for i in range(6)]
    bad_fdb = [{"mac": "02:42:0a:d5:02:f1", "dst": "2001:db8:71::5"}, {"mac": ZERO, "dst": "2001:db8:71::6"}]
    good_neigh = [{"ip": f"10.213.0.{i + 1}", "mac": f"02:42:0a:d5:03:{i:02x}"} for i in range(6)]
    bad_neigh = [{"ip": "fd00:213::7", "mac": "02:42:0a:d5:03:f1"}, {"ip": "fd00:213::8", "mac": "02:42:0a:d5:03:f2"}]
    errors = {}
    for name in twins:
        nf.nsexec(name, "sysctl", "-qw", "net.ipv6.conf.vxlan0.disable_ipv6=1")
    with nl.Namespace(bulk_name) as bulk, nl.Namespace(plain_name) as plain:
        for spec, good, bad in ((t.FDB, good_fdb, bad_fdb), (t.NEIGH, good_neigh, bad_neigh)):
            entries = good[:3] + bad[:1] + good[3:] + bad[1:]
            for ns, apply in ((bulk, t.apply), (plain, tables.apply_plain)):
                ops = ops_for(spec, entries, ns.name)
                with pytest.raises(t.TableApplyError) as caught:
                    apply(ns, spec, ns.link_index("vxlan0"), ops)
                errors[spec.name, ns.name] = caught.value.errors
                owned = tables.read_plain(ns, spec, ns.link_index("vxlan0"))
                assert sorted(owned, key=tables.sort_key(spec)) == sorted(good, key=tables.sort_key(spec)), (
                    spec.name,
                    ns.name,
                )
            assert errors[spec.name, bulk_name] == renamed(errors[spec.name, plain_name], plain_name, bulk_name)
            commands = [op["command"] for op in ops_for(spec, bad, bulk_name)]
            messages = errors[spec.name, bulk_name]
            assert len(messages) == len(bad)
            for command, message in zip(commands, messages, strict=True):
                assert message.startswith(f"{command} in netns {bulk_name}: "), message
    assert all(m.endswith(os.strerror(errno.EAFNOSUPPORT)) for m in errors["fdb", bulk_name]), errors
    assert all(m.endswith(os.strerror(errno.EINVAL)) for m in errors["neigh", bulk_name]), errors


def test_every_entry_fails_on_a_missing_device(twins):
    bulk_name, plain_name = twins
    entries = [{"mac": f"02:42:0a:d5:02:{i:02x}", "dst": f"198.18.71.{i + 2}"} for i in range(4)]
    entries.append({"mac": ZERO, "dst": "198.18.71.40"})
    out = {}
    with nl.Namespace(bulk_name) as bulk, nl.Namespace(plain_name) as plain:
        for ns, apply in ((bulk, t.apply), (plain, tables.apply_plain)):
            ops = ops_for(t.FDB, entries, ns.name)
            ops += [{"action": "delete", "entry": e, "command": f"del {e['mac']}"} for e in entries]
            with pytest.raises(t.TableApplyError) as caught:
                apply(ns, t.FDB, 987654, ops)
            out[ns.name] = caught.value.errors
    assert out[bulk_name] == renamed(out[plain_name], plain_name, bulk_name)
    assert len(out[bulk_name]) == len(entries)  # the upserts fail; a delete of what cannot exist is done
    assert all(m.endswith(os.strerror(errno.ENODEV)) for m in out[bulk_name])


def test_route_socket_is_opened_inside_the_namespace_by_a_passing_thread(twins):
    """route_socket() enters the namespace on a short-lived thread: this thread never changes namespace."""
    ours = os.readlink("/proc/thread-self/ns/net")
    with nl.Namespace(twins[0]) as ns:
        rows = b.dump(ns.route_socket(), "fdb", ns.link_index("vxlan0"))
        assert (DYN_MAC, "198.18.71.99", False) in rows  # only that namespace's vxlan0 has this entry
        assert os.readlink("/proc/thread-self/ns/net") == ours
    missing = object.__new__(nl.Namespace)
    missing.name, missing.label, missing._route = "nf-no-such-netns", "netns nf-no-such-netns", None
    with pytest.raises(nl.NetlinkOpError, match="netns nf-no-such-netns does not exist"):
        missing.route_socket()
    assert not os.path.exists("/run/netns/nf-no-such-netns")  # never created as a side effect


# --- check mode, scale, and the dump parser on kernel bytes ---------------------------------------------------------


def test_check_mode_writes_nothing(twins, nf):
    ns_name = twins[0]
    with nl.Namespace(ns_name) as ns:
        seed = [{"mac": "02:42:0a:d5:00:01", "dst": "198.18.71.2"}, {"mac": ZERO, "dst": "198.18.71.3"}]
        t.reconcile(ns, t.FDB, dev="vxlan0", state="merged", wanted=seed, check_mode=False)
        before = {table: kernel_table(nf, ns_name, table, "vxlan0") for table in ("fdb", "neigh")}
        wanted = [{"mac": "02:42:0a:d5:00:01", "dst": "198.18.71.9"}, {"mac": ZERO, "dst": "198.18.71.4"}]
        result = t.reconcile(ns, t.FDB, dev="vxlan0", state="overridden", wanted=wanted, check_mode=True)
        assert result["changed"] is True
        assert result["after"] == sorted(wanted, key=tables.sort_key(t.FDB))  # the prediction, not a re-read
        neigh = [{"ip": "10.213.0.1", "mac": "02:42:0a:d5:01:01"}]
        assert t.reconcile(ns, t.NEIGH, dev="vxlan0", state="merged", wanted=neigh, check_mode=True)["changed"]
        assert {table: kernel_table(nf, ns_name, table, "vxlan0") for table in ("fdb", "neigh")} == before


def scale_entries(count: int) -> tuple[list[dict], list[dict]]:
    """``count`` FDB entries (unicast, plus a flood list) and ``count`` neighbours (a quarter IPv6)."""
    fdb = [{"mac": ZERO, "dst": f"198.18.72.{i}"} for i in range(1, 33)]
    for i in range(count - len(fdb)):
        fdb.append({"mac": f"02:43:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
                    "dst": str(ipaddress.ip_address("198.18.80.0") + i % 4000)})  # fmt: skip
    neigh = []
    for i in range(count):
        ip = f"fd00:214::{i:x}" if i % 4 == 0 else str(ipaddress.ip_address("10.214.0.0") + i)
        neigh.append({"ip": ip, "mac": f"02:44:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}"})
    return fdb, neigh


def test_20k_entries_per_table(twins, nf):
    ns_name = twins[0]
    fdb, neigh = scale_entries(20000)
    with nl.Namespace(ns_name) as ns:
        for spec, raw in ((t.FDB, fdb), (t.NEIGH, neigh)):
            wanted = t.normalize_entries(spec, raw, state="overridden", local=LOCAL if spec is t.FDB else None)
            first = t.reconcile(ns, spec, dev="vxlan0", state="overridden", wanted=wanted, check_mode=False)
            assert len(first["ops"]) == 20000
            rows = kernel_table(nf, ns_name, spec.name, "vxlan0")
            if spec is t.FDB:
                owned = [
                    {"mac": r["mac"], "dst": r["dst"]} for r in rows if "dst" in r and r.get("state") == "permanent"
                ]
            else:
                owned = [{"ip": r["dst"], "mac": r["lladdr"]} for r in rows if r.get("state") == ["PERMANENT"]]
            assert (
                sorted(owned, key=tables.sort_key(spec)) == first["after"] == sorted(wanted, key=tables.sort_key(spec))
            )
            again = t.reconcile(ns, spec, dev="vxlan0", state="overridden", wanted=wanted, check_mode=False)
            assert (again["changed"], again["ops"], again["before"]) == (False, [], first["after"])
            gone = t.reconcile(ns, spec, dev="vxlan0", state="overridden", wanted=[], check_mode=False)
            assert len(gone["ops"]) == 20000
            assert tables.read_entries(ns, spec, ns.link_index("vxlan0")) == []


def test_dump_parser_matches_pyroute2_on_kernel_bytes(twins, monkeypatch):
    """Raw dump replies of both tables, parsed here and by pyroute2 (with the plain path's filters)."""
    marshal = pytest.importorskip("pyroute2.netlink.rtnl.marshal")
    ns_name = twins[0]
    fdb, neigh = scale_entries(600)
    in_runs = []  # entries parsed by _rtnl.neigh._run: a run of same-shaped entries unpacked at once
    run = b._run
    monkeypatch.setattr(b, "_run", lambda *args, **kwargs: in_runs.append(run(*args, **kwargs)) or in_runs[-1])
    with nl.Namespace(ns_name) as ns:
        index = ns.link_index("vxlan0")
        t.apply(ns, t.FDB, index, ops_for(t.FDB, fdb, ns_name))
        t.apply(ns, t.NEIGH, index, ops_for(t.NEIGH, neigh, ns_name))
        route = ns.route_socket()
        for table in ("fdb", "neigh"):
            route.sock.send(b.encode_dump(table, index, 777))
            chunks, rows, owned, status, names = [], [], [], 0, {}
            in_runs.clear()
            while not status & DUMP_DONE:
                nbytes = route.sock.recv_into(route.buf)
                chunks.append(bytes(route.buf[:nbytes]))
                status |= b.parse_dump(table, index, route.buf, nbytes, rows)
                b.parse_dump(table, index, route.buf, nbytes, owned, permanent_only=True, names=names)
            # the kernel's own layout is the fast one: nearly every entry went through a run
            assert sum(in_runs) >= 2 * 0.9 * len(rows), (table, len(rows), sum(in_runs), len(in_runs))
            assert owned == [r[:2] for r in rows if r[2]]
            decoded = [m for c in chunks for m in marshal.MarshalRtnl().parse(c) if m["header"]["type"] == 28]
            assert all(m["ifindex"] == index for m in decoded)  # the kernel filtered by device
            expected = []
            for m in decoded:
                mac, dst, permanent = m.get_attr("NDA_LLADDR"), m.get_attr("NDA_DST"), bool(m["state"] & 0x80)
                if table == "fdb" and m["flags"] & NTF_SELF and dst:
                    expected.append((mac, dst, permanent))
                elif table == "neigh" and m["family"] in (2, 10):
                    expected.append((dst, mac, permanent))
            assert rows == expected
            assert len(chunks) >= 2  # a multi-part dump
            assert sum(1 for r in rows if r[2]) == (len(fdb) if table == "fdb" else len(neigh))
