# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""netfleet.overlay.fdb through Ansible: every state, the flood list, IPv6, and entries that are not ours.

vxlan0 is built as the vxlan module builds it: in the host namespace on ``ul0`` (198.18.7.1), then moved into the
overlay namespace and enslaved to br0.  Entries the module must never touch: a bridge-side (``master br0``) entry
and a dynamic (learned-like) ``self`` entry on vxlan0, and a permanent entry on another vxlan device.
"""

from __future__ import annotations

import pytest
from support.tables import gathered_and_rendered

pytestmark = pytest.mark.kernel

LOCAL, D2, D3 = "198.18.7.1", "198.18.7.2", "198.18.7.3"
LOCAL6, D6A, D6B = "2001:db8:7::1", "2001:db8:7::2", "2001:db8:7::3"
ZERO = "00:00:00:00:00:00"
U1, U2, U3, U4 = (f"02:42:0a:d5:00:{i:02x}" for i in (3, 4, 5, 6))
MASTER_MAC = "02:00:00:00:00:98"  # bridge-side entry, added with `bridge fdb add ... master static`
DYN_MAC = "02:00:00:00:00:99"  # device-side but not permanent
OTHER_MAC = "02:42:0a:d5:01:03"  # permanent, on vxlan1


@pytest.fixture
def overlay(lab, nf):
    host = lab.netns("h")
    ovl = lab.netns("o")
    lab.underlay(host, addr_a=f"{LOCAL}/24")  # D2, D3 are remote: nothing answers, nothing loops back
    nf.ip(host, "addr", "add", f"{LOCAL6}/64", "dev", "ul0", "nodad")
    nf.ip(ovl, "link", "add", "br0", "mtu", "1450", "type", "bridge")
    for dev, vni, local in (("vxlan0", "256", LOCAL), ("vxlan1", "257", LOCAL), ("vxlan6", "258", LOCAL6)):
        vxlan = ("type", "vxlan", "id", vni, "dstport", "4789", "local", local, "dev", "ul0", "nolearning")
        nf.ip(host, "link", "add", dev, *vxlan)
        nf.ip(host, "link", "set", dev, "netns", ovl)
        nf.ip(ovl, "link", "set", dev, "up")
    nf.ip(ovl, "link", "set", "vxlan0", "master", "br0")
    nf.ip(ovl, "link", "set", "br0", "up")
    nf.sh("bridge", "-n", ovl, "fdb", "add", MASTER_MAC, "dev", "vxlan0", "master", "static")
    nf.sh("bridge", "-n", ovl, "fdb", "add", DYN_MAC, "dev", "vxlan0", "dst", D3, "self", "dynamic")
    nf.sh("bridge", "-n", ovl, "fdb", "add", OTHER_MAC, "dev", "vxlan1", "dst", D2, "self", "permanent")
    return host, ovl


def owned(snap: dict, ns: str, dev: str = "vxlan0") -> list[dict]:
    """Permanent device-side entries with a destination, as ``bridge -j fdb show`` lists them."""
    rows = [
        {"mac": mac, "dst": dst}
        for ifname, mac, dst, master, flags, state in snap[ns]["fdb"]
        if ifname == dev and dst and flags == "self" and state == "permanent"
    ]
    return sorted(rows, key=lambda e: (e["mac"], e["dst"]))


def e(mac, dst=None):
    return {"mac": mac, "dst": dst} if dst else {"mac": mac}


def assert_foreign_intact(snap, ns):
    fdb = snap[ns]["fdb"]
    assert ("vxlan0", MASTER_MAC, None, "br0", "", "static") in fdb, "the bridge-side entry was touched"
    assert any(r[:3] == ("vxlan0", DYN_MAC, D3) and r[5] != "permanent" for r in fdb), "a learned entry was touched"
    assert ("vxlan1", OTHER_MAC, D2, None, "self", "permanent") in fdb, "another device's entry was touched"


def assert_self_entries(nf, ns, dev, entries):
    """Each entry shows in ``bridge -j fdb show`` as a ``self`` + ``permanent`` entry with its dst, never as master."""
    rows = nf.Kernel.fdb(ns, dev)
    for want in entries:
        mine = [r for r in rows if r["mac"] == want["mac"] and r.get("dst") == want["dst"]]
        assert len(mine) == 1, (want, rows)
        assert mine[0]["flags"] == ["self"], mine
        assert mine[0]["state"] == "permanent", mine
        assert "master" not in mine[0], mine
    macs = {w["mac"] for w in entries}
    assert not [r for r in rows if r["mac"] in macs and "master" in r], "a bridge (master) entry was written"


def assert_counts_and_changes(result):
    """counts and changes agree with the whole tables and the commands of the same result."""
    changes, counts = result["changes"], result["counts"]
    assert counts == {
        "before": len(result["before"]),
        "after": len(result["after"]),
        "deleted": len(changes["deleted"]),
        "written": len(changes["written"]),
    }
    assert len(result["commands"]) == len(changes["deleted"]) + len(changes["written"])
    for entry, line in zip(changes["deleted"] + changes["written"], result["commands"], strict=True):
        assert f" {entry['mac']} dev " in line and f" dst {entry['dst']} " in f"{line} ", (entry, line)


def test_fdb_states(overlay, nf):
    host, ovl = overlay
    dev = {"netns": ovl, "dev": "vxlan0", "full_tables": True}  # before and after, also outside diff mode
    merged, replaced, overridden, deleted = nf.four_steps(
        host,
        [
            ("fdb", {**dev, "entries": [e(U1.upper(), D2), e(ZERO, D2), e(ZERO, D3)]}),
            ("fdb", {**dev, "state": "replaced", "entries": [e(U1, D3), e(U2, D2), e(ZERO, D3)]}),
            ("fdb", {**dev, "state": "overridden", "entries": [e(U2, D2), e(ZERO, D2)]}),
            ("fdb", {**dev, "state": "deleted", "entries": [e(ZERO, D2)]}),
        ],
        [ovl],
    )
    for r in (merged, replaced, overridden, deleted):
        nf.assert_four_steps(r)
        for key in ("snap_before", "snap_after_apply", "snap_end"):
            assert_foreign_intact(r[key], ovl)
        assert r["apply"]["after"] == owned(r["snap_after_apply"], ovl)
        assert r["apply"]["before"] == owned(r["snap_before"], ovl)
        assert_counts_and_changes(r["check"])
        assert_counts_and_changes(r["apply"])

    # merged: a unicast entry and a flood list of two destinations (appended, both kept), all device-side
    assert owned(merged["snap_after_apply"], ovl) == [e(ZERO, D2), e(ZERO, D3), e(U1, D2)]
    rows = [r for r in merged["snap_after_apply"][ovl]["fdb"] if r[1] in (U1, ZERO)]
    assert sorted(rows) == [
        ("vxlan0", ZERO, D2, None, "self", "permanent"),
        ("vxlan0", ZERO, D3, None, "self", "permanent"),
        ("vxlan0", U1, D2, None, "self", "permanent"),
    ], "expected self + permanent entries with a dst, and no bridge (master br0) entry"
    assert merged["check"]["commands"] == [
        f"bridge -n {ovl} fdb append {ZERO} dev vxlan0 dst {D2} self permanent",
        f"bridge -n {ovl} fdb append {ZERO} dev vxlan0 dst {D3} self permanent",
        f"bridge -n {ovl} fdb replace {U1} dev vxlan0 dst {D2} self permanent",
    ]
    assert merged["check"]["diff"]["after"].splitlines() == [
        f"{ZERO} dev vxlan0 dst {D2} self permanent",
        f"{ZERO} dev vxlan0 dst {D3} self permanent",
        f"{U1} dev vxlan0 dst {D2} self permanent",
    ]
    # replaced: U1 moves to D3 with one replace (the kernel switches its destination in place, the old one is gone),
    # the flood list becomes exactly D3, U2 is added
    assert owned(replaced["snap_after_apply"], ovl) == [e(ZERO, D3), e(U1, D3), e(U2, D2)]
    assert replaced["check"]["commands"] == [
        f"bridge -n {ovl} fdb del {ZERO} dev vxlan0 dst {D2} self",
        f"bridge -n {ovl} fdb replace {U1} dev vxlan0 dst {D3} self permanent",
        f"bridge -n {ovl} fdb replace {U2} dev vxlan0 dst {D2} self permanent",
    ]
    # overridden: exactly the given entries among the permanent device-side ones
    assert owned(overridden["snap_after_apply"], ovl) == [e(ZERO, D2), e(U2, D2)]
    # deleted: one member of the flood list
    assert owned(deleted["snap_after_apply"], ovl) == [e(U2, D2)]
    assert_self_entries(nf, ovl, "vxlan0", [e(U2, D2)])


def test_fdb_deleted_key_and_all_gathered_rendered(overlay, lab, nf):
    host, ovl = overlay
    dev = {"netns": ovl, "dev": "vxlan0", "full_tables": True}  # before and after, also outside diff mode
    entries = [e(U3, D2), e(U4, D3), e(ZERO, D2), e(ZERO, D3)]
    missing = lab.name("nowhere")
    gathered, rendered, (deleted_key, deleted_all) = gathered_and_rendered(
        nf,
        host,
        "fdb",
        dev=dev,
        entries=entries,
        missing=missing,
        scenarios=[
            ("fdb", {**dev, "state": "deleted", "entries": [e(U3), e(ZERO)]}),
            ("fdb", {**dev, "state": "deleted"}),
        ],
        namespaces=[ovl],
    )
    want = [e(ZERO, D2), e(ZERO, D3), e(U3, D2), e(U4, D3)]
    assert gathered == want == owned(deleted_key["snap_before"], ovl)
    assert rendered == [
        f"bridge -n {missing} fdb append {ZERO} dev vxlan9 dst {D2} self permanent",
        f"bridge -n {missing} fdb append {ZERO} dev vxlan9 dst {D3} self permanent",
        f"bridge -n {missing} fdb replace {U3} dev vxlan9 dst {D2} self permanent",
        f"bridge -n {missing} fdb replace {U4} dev vxlan9 dst {D3} self permanent",
    ]

    # a key alone deletes every entry of that key: U3, and the whole flood list
    nf.assert_four_steps(deleted_key)
    assert owned(deleted_key["snap_after_apply"], ovl) == [e(U4, D3)]
    assert len(deleted_key["apply"]["commands"]) == 3
    # no entries: every permanent device-side entry of vxlan0, nothing else
    nf.assert_four_steps(deleted_all)
    assert deleted_all["apply"]["commands"] == [f"bridge -n {ovl} fdb del {U4} dev vxlan0 dst {D3} self"]
    assert owned(deleted_all["snap_after_apply"], ovl) == []
    assert_foreign_intact(deleted_all["snap_end"], ovl)


def test_fdb_ipv6_destinations(overlay, nf):
    host, ovl = overlay
    entries = [e(U1, D6A), e(ZERO, D6A), e(ZERO, "2001:DB8:7:0:0:0:0:3")]
    args = {"netns": ovl, "dev": "vxlan6", "entries": entries, "full_tables": True}
    apply, again = nf.run_tasks(host, [nf.Call("fdb", args), nf.Call("fdb", args)])
    nf.assert_ok(apply)
    assert apply["changed"] is True
    nf.assert_ok(again)
    assert again["changed"] is False
    want = [e(ZERO, D6A), e(ZERO, D6B), e(U1, D6A)]
    assert apply["after"] == want == nf.Kernel.permanent_fdb(ovl, "vxlan6")
    assert_self_entries(nf, ovl, "vxlan6", want)


def test_fdb_result_is_bounded_unless_asked(overlay, nf):
    """Without diff mode or full_tables: the counts and the changed entries only, in check mode as in a real run;
    diff mode adds the whole tables and the diff."""
    host, ovl = overlay
    args = {"netns": ovl, "dev": "vxlan0", "entries": [e(U1, D2), e(ZERO, D3)]}
    moved = {**args, "entries": [e(U1.upper(), D3)]}
    check, apply, again, diffed = nf.run_tasks(
        host,
        [
            nf.Call("fdb", args, check=True),
            nf.Call("fdb", args),
            nf.Call("fdb", args),
            nf.Call("fdb", moved, diff=True),
        ],
    )
    for r in (check, apply, again, diffed):
        nf.assert_ok(r)
    for r in (check, apply, again):
        assert "before" not in r and "after" not in r and "diff" not in r, r
    for r in (check, apply):
        assert r["changed"] is True
        assert r["counts"] == {"before": 0, "after": 2, "deleted": 0, "written": 2}
        assert r["changes"] == {"deleted": [], "written": [e(ZERO, D3), e(U1, D2)]}
        assert len(r["commands"]) == 2
    assert again["changed"] is False and again["commands"] == []
    assert again["counts"] == {"before": 2, "after": 2, "deleted": 0, "written": 0}
    assert again["changes"] == {"deleted": [], "written": []}
    assert diffed["changed"] is True
    assert diffed["changes"] == {"deleted": [], "written": [e(U1, D3)]}
    assert diffed["counts"] == {"before": 2, "after": 2, "deleted": 0, "written": 1}
    assert diffed["before"] == [e(ZERO, D3), e(U1, D2)] and diffed["after"] == [e(ZERO, D3), e(U1, D3)]
    assert diffed["diff"]["after"].splitlines() == [
        f"{ZERO} dev vxlan0 dst {D3} self permanent",
        f"{U1} dev vxlan0 dst {D3} self permanent",
    ]
    assert owned(nf.Kernel.snapshot(ovl), ovl) == [e(ZERO, D3), e(U1, D3)]
