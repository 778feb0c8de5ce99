# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""netfleet.overlay.vtep_firewall through Ansible in a throw-away namespace: the four steps, a membership
change, removal, bad input, and an admin's own table that is never touched.

Every nft command runs inside the test's namespace: the playbook itself runs there (``nsenter --net``), with a
private ``/run`` (``unshare --mount`` and a tmpfs), so the module's host lock is not left in the machine's ``/run``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ansible_collections.netfleet.overlay.plugins.module_utils import _lock

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(shutil.which("nft") is None, reason="nft not installed (make deps installs nftables)"),
]

NFT = shutil.which("nft") or "/usr/sbin/nft"
FOREIGN = (
    f"{NFT} add table inet site_admin && "
    f"{NFT} 'add chain inet site_admin input {{ type filter hook input priority 10; policy accept; }}' && "
    f"{NFT} add rule inet site_admin input udp dport 4789 accept"
)
V1, V2, V3 = "198.18.1.1", "198.18.1.2", "198.18.1.3"
RULES = [
    f"udp dport @ports ip daddr {V1} ip saddr @vteps accept",
    "udp dport @ports counter drop",
]
# where the host lock (plugins/module_utils/_lock.py) is made, and where releases before 0.2 made it
HOST_LOCK_FILES = (Path(_lock.LOCK_PATH), Path("/run/lock/netfleet-overlay.lock"))


def host_locks() -> dict:
    """{path: the pid it records} of the host lock files that exist in the machine's /run.

    Other test runs may take the machine's lock meanwhile, so what tells this run's module apart is the pid.
    """
    found = {}
    for path in HOST_LOCK_FILES:
        try:
            found[str(path)] = path.read_text(encoding="ascii", errors="replace").strip()
        except FileNotFoundError:
            continue
    return found


def ruleset(result: dict) -> dict:
    """{table: {set name: elements}} of `nft -j -s list ruleset` (a Cmd result)."""
    assert result["rc"] == 0, result
    tables: dict = {}
    for item in json.loads(result["stdout"])["nftables"]:
        if "table" in item:
            tables.setdefault(f"{item['table']['family']} {item['table']['name']}", {})
        if "set" in item:
            s = item["set"]
            tables[f"{s['family']} {s['table']}"][s["name"]] = s.get("elem", [])
    return tables


def test_vtep_firewall(lab, nf):
    host = lab.netns("h")
    present = {"vtep": V1, "allow": [V3, V2], "ports": [4789]}
    moved = {"vtep": V1, "allow": [V2], "ports": [4789, 8472]}
    absent = {"state": "absent"}
    read = nf.Cmd(f"{NFT} -j -s list ruleset")
    rows = nf.run_tasks(
        host,
        [
            nf.Cmd(FOREIGN),
            read,
            nf.Call("vtep_firewall", present, check=True, diff=True),
            read,
            nf.Call("vtep_firewall", present, diff=True),
            read,
            nf.Call("vtep_firewall", present, check=True, diff=True),
            nf.Call("vtep_firewall", present),
            nf.Call("vtep_firewall", moved, check=True),
            nf.Call("vtep_firewall", moved),
            read,
            nf.Call("vtep_firewall", absent, check=True),
            read,
            nf.Call("vtep_firewall", absent),
            read,
            nf.Call("vtep_firewall", absent),
            nf.Call("vtep_firewall", {"vtep": V1, "allow": ["2001:db8::2"]}),
            nf.Call("vtep_firewall", {"allow": [V2]}),
            nf.Cmd(f"cat {_lock.LOCK_PATH}"),
        ],
        private_run=True,
    )
    (setup, start, check, after_check, apply, after_apply, check2, apply2) = rows[:8]
    (move_check, move, after_move, rm_check, after_rm_check, rm, after_rm, rm2, bad_family, no_vtep) = rows[8:18]
    (private_lock,) = rows[18:]

    # the module took the host lock in the playbook's own /run, and made or touched none in the machine's
    assert private_lock["rc"] == 0 and private_lock["stdout"].strip().isdigit(), private_lock
    ours = private_lock["stdout"].strip()
    assert ours not in host_locks().values(), "the module wrote a host lock file in the machine's /run"
    assert setup["rc"] == 0, setup
    foreign = ruleset(start)
    assert list(foreign) == ["inet site_admin"]

    # check mode predicts, changes nothing
    nf.assert_ok(check)
    assert check["changed"] is True and check["before"] == {}
    assert check["after"] == {
        "table": "inet netfleet_overlay",
        "allow": [V2, V3],
        "ports": [4789],
        "rules": {"input": RULES},
    }
    assert check["commands"][:3] == [
        "add table inet netfleet_overlay",
        "delete table inet netfleet_overlay",
        "add table inet netfleet_overlay",
    ]
    assert "add element inet netfleet_overlay vteps { 198.18.1.2, 198.18.1.3 }" in check["commands"]
    assert check["diff"] == {"before": {}, "after": check["after"]}
    assert ruleset(after_check) == foreign

    # apply: what check mode said, and only our table is new
    nf.assert_ok(apply)
    assert apply["changed"] is True and apply["after"] == check["after"] and apply["commands"] == check["commands"]
    assert ruleset(after_apply) == {**foreign, "inet netfleet_overlay": {"ports": [4789], "vteps": [V2, V3]}}

    # again: nothing to do
    for r in (check2, apply2):
        nf.assert_ok(r)
        assert r["changed"] is False and r["commands"] == [] and r["before"] == r["after"] == apply["after"]

    # membership and ports change: the whole table is replaced in one transaction
    nf.assert_ok(move_check)
    nf.assert_ok(move)
    assert move_check["changed"] and move["changed"] and move_check["after"] == move["after"]
    assert move["before"]["allow"] == [V2, V3] and move["after"]["allow"] == [V2]
    assert ruleset(after_move) == {**foreign, "inet netfleet_overlay": {"ports": [4789, 8472], "vteps": [V2]}}

    # removal, predicted then real; the admin's table stays
    nf.assert_ok(rm_check)
    assert (
        rm_check["changed"]
        and rm_check["after"] == {}
        and rm_check["commands"] == ["delete table inet netfleet_overlay"]
    )
    assert "inet netfleet_overlay" in ruleset(after_rm_check)
    nf.assert_ok(rm)
    assert rm["changed"] and rm["commands"] == ["delete table inet netfleet_overlay"]
    assert ruleset(after_rm) == foreign
    nf.assert_ok(rm2)
    assert rm2["changed"] is False and rm2["commands"] == []

    # bad input fails before anything, naming the field and the value
    assert (
        bad_family["failed"]
        and "allow[0]: '2001:db8::2' is an IPv6 address but vtep 198.18.1.1 is IPv4" in (bad_family["msg"])
    )
    assert no_vtep["failed"] and "state is present but all of the following are missing: vtep" in no_vtep["msg"]
