# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""netfleet.overlay.neigh through Ansible: every state, IPv4 and IPv6, learned entries and other devices left alone."""

from __future__ import annotations

import pytest
from support.tables import gathered_and_rendered

pytestmark = pytest.mark.kernel

A4, A4_MAC, A4_MAC2 = "10.213.0.3", "02:42:0a:d5:00:03", "02:42:0a:d5:00:33"
B6, B6_MAC = "fd00:213::3", "02:9c:51:8e:21:07"
C4, C4_MAC = "10.213.0.4", "02:42:0a:d5:00:04"
D4, D4_MAC = "10.213.0.5", "02:42:0a:d5:00:05"
# not ours: learned (stale, reachable) entries on the managed device, a permanent entry on another device
STALE = ("vxlan0", "10.213.0.99", "02:00:00:00:00:99", "DYNAMIC")
REACHABLE = ("vxlan0", "fd00:213::99", "02:00:00:00:01:99", "DYNAMIC")
OTHER = ("vxlan1", "10.213.1.3", "02:42:0a:d5:01:03", "PERMANENT")


@pytest.fixture
def overlay(lab, nf):
    host = lab.netns("h")
    ovl = lab.netns("o")
    for dev, vni in (("vxlan0", "256"), ("vxlan1", "257")):
        nf.ip(ovl, "link", "add", dev, "type", "vxlan", "id", vni, "dstport", "4789", "nolearning", "proxy")
        nf.ip(ovl, "link", "set", dev, "up")
    nf.ip(ovl, "neigh", "add", STALE[1], "lladdr", STALE[2], "dev", "vxlan0", "nud", "stale")
    nf.ip(ovl, "neigh", "add", REACHABLE[1], "lladdr", REACHABLE[2], "dev", "vxlan0", "nud", "reachable")
    nf.ip(ovl, "neigh", "add", OTHER[1], "lladdr", OTHER[2], "dev", "vxlan1", "nud", "permanent")
    return host, ovl


def permanent(snap: dict, ns: str, dev: str = "vxlan0") -> list[dict]:
    """The device's permanent entries, as iproute2 shows them."""
    rows = [{"ip": d, "mac": m} for dv, d, m, st in snap[ns]["neigh"] if dv == dev and st == "PERMANENT"]
    return sorted(rows, key=lambda e: (e["ip"], e["mac"]))


def e(ip, mac=None):
    return {"ip": ip, "mac": mac} if mac else {"ip": ip}


def assert_foreign_intact(snap, ns):
    assert STALE in snap[ns]["neigh"], "a learned entry was touched"
    assert REACHABLE in snap[ns]["neigh"], "a learned entry was touched"
    assert OTHER in snap[ns]["neigh"], "another device's entry was touched"


def test_neigh_states(overlay, nf):
    host, ovl = overlay
    dev = {"netns": ovl, "dev": "vxlan0", "full_tables": True}  # before and after, also outside diff mode
    merged, replaced, overridden, deleted, deleted_key = nf.four_steps(
        host,
        [
            ("neigh", {**dev, "entries": [e(A4, A4_MAC), e("FD00:213:0::3", B6_MAC.upper())]}),
            ("neigh", {**dev, "state": "replaced", "entries": [e(A4, A4_MAC2), e(C4, C4_MAC)]}),
            ("neigh", {**dev, "state": "overridden", "entries": [e(A4, A4_MAC2), e(D4, D4_MAC)]}),
            ("neigh", {**dev, "state": "deleted", "entries": [e(D4, D4_MAC)]}),
            ("neigh", {**dev, "state": "deleted", "entries": [e(A4)]}),
        ],
        [ovl],
    )
    for r in (merged, replaced, overridden, deleted, deleted_key):
        nf.assert_four_steps(r)
        for key in ("snap_before", "snap_after_apply", "snap_end"):
            assert_foreign_intact(r[key], ovl)
        # what the module says it did is what iproute2 sees
        assert r["apply"]["after"] == permanent(r["snap_after_apply"], ovl)
        assert r["apply"]["before"] == permanent(r["snap_before"], ovl)
        for result in (r["check"], r["apply"]):
            changes = result["changes"]
            assert result["counts"] == {
                "before": len(result["before"]),
                "after": len(result["after"]),
                "deleted": len(changes["deleted"]),
                "written": len(changes["written"]),
            }
            assert len(result["commands"]) == len(changes["deleted"]) + len(changes["written"])

    # merged: IPv4 and IPv6, input normalised
    assert permanent(merged["snap_after_apply"], ovl) == [e(A4, A4_MAC), e(B6, B6_MAC)]
    assert merged["check"]["commands"] == [
        f"ip -n {ovl} neigh replace {A4} lladdr {A4_MAC} dev vxlan0 nud permanent",
        f"ip -n {ovl} neigh replace {B6} lladdr {B6_MAC} dev vxlan0 nud permanent",
    ]
    assert merged["check"]["diff"]["before"] == ""
    assert merged["check"]["diff"]["after"] == (
        f"{A4} dev vxlan0 lladdr {A4_MAC} PERMANENT\n{B6} dev vxlan0 lladdr {B6_MAC} PERMANENT\n"
    )
    # replaced: the given keys are corrected or added, the others (B6) stay
    assert permanent(replaced["snap_after_apply"], ovl) == [e(A4, A4_MAC2), e(C4, C4_MAC), e(B6, B6_MAC)]
    # overridden: exactly the given entries among the permanent ones, deletes first; learned and foreign stay
    assert permanent(overridden["snap_after_apply"], ovl) == [e(A4, A4_MAC2), e(D4, D4_MAC)]
    assert overridden["check"]["commands"] == [
        f"ip -n {ovl} neigh del {C4} dev vxlan0",
        f"ip -n {ovl} neigh del {B6} dev vxlan0",
        f"ip -n {ovl} neigh replace {D4} lladdr {D4_MAC} dev vxlan0 nud permanent",
    ]
    # deleted: a given entry, then a key alone
    assert permanent(deleted["snap_after_apply"], ovl) == [e(A4, A4_MAC2)]
    assert permanent(deleted_key["snap_after_apply"], ovl) == []


def test_neigh_deleted_all_gathered_rendered(overlay, lab, nf):
    host, ovl = overlay
    dev = {"netns": ovl, "dev": "vxlan0", "full_tables": True}  # before and after, also outside diff mode
    entries = [e(A4, A4_MAC), e(B6, B6_MAC)]
    missing = lab.name("nowhere")
    gathered, rendered, (delete_all,) = gathered_and_rendered(
        nf,
        host,
        "neigh",
        dev=dev,
        entries=entries,
        missing=missing,
        scenarios=[("neigh", {**dev, "state": "deleted"})],
        namespaces=[ovl],
    )
    assert gathered == [e(A4, A4_MAC), e(B6, B6_MAC)] == permanent(delete_all["snap_before"], ovl)
    assert rendered == [
        f"ip -n {missing} neigh replace {A4} lladdr {A4_MAC} dev vxlan9 nud permanent",
        f"ip -n {missing} neigh replace {B6} lladdr {B6_MAC} dev vxlan9 nud permanent",
    ]

    # deleted without entries: every permanent entry of the device, nothing else
    nf.assert_four_steps(delete_all)
    assert delete_all["check"]["after"] == []
    assert delete_all["apply"]["commands"] == [
        f"ip -n {ovl} neigh del {A4} dev vxlan0",
        f"ip -n {ovl} neigh del {B6} dev vxlan0",
    ]
    assert permanent(delete_all["snap_after_apply"], ovl) == []
    assert_foreign_intact(delete_all["snap_end"], ovl)
    assert nf.Kernel.permanent_neigh(ovl, "vxlan1") == [{"ip": OTHER[1], "mac": OTHER[2]}]


def test_neigh_result_is_bounded_unless_asked(overlay, nf):
    """Without diff mode or full_tables: the counts and the changed entries only; diff mode adds the tables."""
    host, ovl = overlay
    args = {"netns": ovl, "dev": "vxlan0", "state": "overridden", "entries": [e(A4, A4_MAC), e(C4, C4_MAC)]}
    check, apply, diffed = nf.run_tasks(
        host,
        [
            nf.Call("neigh", args, check=True),
            nf.Call("neigh", args),
            nf.Call("neigh", {**args, "entries": [e(A4, A4_MAC2)]}, check=True, diff=True),
        ],
    )
    for r in (check, apply, diffed):
        nf.assert_ok(r)
        assert r["changed"] is True
    for r in (check, apply):
        assert "before" not in r and "after" not in r and "diff" not in r, r
        assert r["counts"] == {"before": 0, "after": 2, "deleted": 0, "written": 2}
        assert r["changes"] == {"deleted": [], "written": [e(A4, A4_MAC), e(C4, C4_MAC)]}
    assert diffed["counts"] == {"before": 2, "after": 1, "deleted": 1, "written": 1}
    assert diffed["changes"] == {"deleted": [e(C4, C4_MAC)], "written": [e(A4, A4_MAC2)]}
    assert diffed["before"] == [e(A4, A4_MAC), e(C4, C4_MAC)] and diffed["after"] == [e(A4, A4_MAC2)]
    assert permanent(nf.Kernel.snapshot(ovl), ovl) == [e(A4, A4_MAC), e(C4, C4_MAC)]  # check mode: unchanged
