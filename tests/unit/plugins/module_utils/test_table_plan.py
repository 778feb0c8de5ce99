# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The table planner (_table.plan / normalize_entries) and the input validators (_validate), on plain data."""

from __future__ import annotations

import pytest
from support import tables
from support.tables import command, pairs

from ansible_collections.netfleet.overlay.plugins.module_utils import _model
from ansible_collections.netfleet.overlay.plugins.module_utils import _table as t
from ansible_collections.netfleet.overlay.plugins.module_utils import _validate as v

ZERO = "00:00:00:00:00:00"
M3, M4, M5 = "02:42:0a:d5:00:03", "02:42:0a:d5:00:04", "02:42:0a:d5:00:05"
D1, D2, D3 = "198.18.1.1", "198.18.1.2", "198.18.1.3"


def fdb(mac, dst):
    return {"mac": mac, "dst": dst}


def nb(ip, mac):
    return {"ip": ip, "mac": mac}


def plan_fdb(state, wanted, current, netns="ovl-256"):
    return t.plan(t.FDB, state, wanted, pairs(t.FDB, current), dev="vxlan0", netns=netns)


def plan_neigh(state, wanted, current, netns="ovl-256"):
    return t.plan(t.NEIGH, state, wanted, pairs(t.NEIGH, current), dev="vxlan0", netns=netns)


def simulate(spec, current, ops):
    """Apply ops the way the kernel does: delete one (key, member); upsert replaces an exclusive key."""
    table = {(e[spec.key_field], e[spec.member_field]) for e in current}
    for op in ops:
        key, member = op["entry"][spec.key_field], op["entry"][spec.member_field]
        if op["action"] == "delete":
            table.discard((key, member))
        else:
            if not spec.additive(key):
                table = {p for p in table if p[0] != key}
            table.add((key, member))
    return sorted((spec.entry(k, m) for k, m in table), key=tables.sort_key(spec))


def assert_deletes_first(result):
    actions = [op["action"] for op in result["ops"]]
    assert actions == sorted(actions, key=lambda a: a != "delete"), actions


# --- normalize_entries ------------------------------------------------------------------------------------------


class TestNormalizeEntries:
    def test_fdb_normalises_mac_and_dst(self):
        out = t.normalize_entries(t.FDB, [{"mac": "02-42-0A-D5-00-03", "dst": " 2001:DB8:0::2 "}], state="merged")
        assert out == [fdb(M3, "2001:db8::2")]

    def test_neigh_normalises_ip_and_mac(self):
        out = t.normalize_entries(t.NEIGH, [{"ip": "FD00:213:0:0::3", "mac": "02:42:0A:D5:00:03"}], state="merged")
        assert out == [nb("fd00:213::3", M3)]

    def test_zero_mac_is_a_flood_key_for_fdb_only(self):
        assert t.normalize_entries(t.FDB, [{"mac": ZERO, "dst": D2}], state="merged") == [fdb(ZERO, D2)]
        with pytest.raises(v.InputError, match=r"entries\[0\]\.mac: '00:00:00:00:00:00' is the all-zero MAC"):
            t.normalize_entries(t.NEIGH, [{"ip": "10.213.0.3", "mac": ZERO}], state="merged")

    @pytest.mark.parametrize("mac", ["01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff", "33:33:00:00:00:01"])
    def test_multicast_mac_is_rejected(self, mac):
        with pytest.raises(v.InputError, match=rf"entries\[0\]\.mac: '{mac}' is a multicast/broadcast MAC"):
            t.normalize_entries(t.FDB, [{"mac": mac, "dst": D2}], state="merged")

    @pytest.mark.parametrize(
        ("spec", "entries", "message"),
        [
            (t.NEIGH, [{"ip": "10.213.0.3", "mac": M3}, {"ip": "10.213.0.3", "mac": M4}], "duplicate key 10.213.0.3"),
            (t.NEIGH, [{"ip": "fd00::3", "mac": M3}, {"ip": "FD00:0::3", "mac": M3}], "duplicate key fd00::3"),
            (t.FDB, [fdb(M3, D2), fdb(M3.upper(), D3)], f"duplicate key {M3}"),
            (t.FDB, [fdb(ZERO, D2), fdb(ZERO, D2)], f"duplicate key {ZERO} {D2}"),
        ],
    )
    def test_duplicate_keys_are_named(self, spec, entries, message):
        with pytest.raises(v.InputError, match=rf"entries\[1\]: {message} \(already given as entries\[0\]\)"):
            t.normalize_entries(spec, entries, state="merged")

    def test_flood_key_once_per_dst_is_not_a_duplicate(self):
        out = t.normalize_entries(t.FDB, [fdb(ZERO, D2), fdb(ZERO, D3)], state="overridden")
        assert out == [fdb(ZERO, D2), fdb(ZERO, D3)]

    def test_key_only_entries_with_deleted(self):
        out = t.normalize_entries(t.FDB, [{"mac": M3}, {"mac": ZERO}, {"mac": ZERO, "dst": D2}], state="deleted")
        assert out == [{"mac": M3, "dst": None}, {"mac": ZERO, "dst": None}, fdb(ZERO, D2)]
        assert t.normalize_entries(t.NEIGH, [{"ip": "10.213.0.3"}], state="deleted") == [nb("10.213.0.3", None)]

    def test_key_only_flood_entry_twice_is_a_duplicate_not_a_crash(self):
        with pytest.raises(v.InputError, match=rf"entries\[1\]: duplicate key {ZERO} \("):
            t.normalize_entries(t.FDB, [{"mac": ZERO}, {"mac": ZERO}], state="deleted")

    @pytest.mark.parametrize("state", ["merged", "replaced", "overridden", "rendered"])
    def test_member_required_unless_deleted(self, state):
        with pytest.raises(v.InputError, match=rf"entries\[0\]\.dst is required with state={state}"):
            t.normalize_entries(t.FDB, [{"mac": M3}], state=state)
        with pytest.raises(v.InputError, match=rf"entries\[0\]\.mac is required with state={state}"):
            t.normalize_entries(t.NEIGH, [{"ip": "10.213.0.3", "mac": ""}], state=state)

    def test_key_required_unknown_keys_and_non_dicts(self):
        with pytest.raises(v.InputError, match=r"entries\[0\]\.mac is required"):
            t.normalize_entries(t.FDB, [{"dst": D2}], state="merged")
        with pytest.raises(v.InputError, match=r"entries\[0\]: unknown key\(s\) lladdr"):
            t.normalize_entries(t.NEIGH, [{"ip": "10.213.0.3", "lladdr": M3}], state="merged")
        with pytest.raises(v.InputError, match=r"entries\[1\]: expected a dict with mac and dst"):
            t.normalize_entries(t.FDB, [fdb(M3, D2), "02:42:0a:d5:00:04"], state="merged")

    def test_malformed_values_are_named(self):
        with pytest.raises(v.InputError, match=r"entries\[0\]\.dst: '198\.18\.1' is not an IP address"):
            t.normalize_entries(t.FDB, [fdb(M3, "198.18.1")], state="merged")
        with pytest.raises(v.InputError, match=r"entries\[0\]\.ip: '10\.213\.0\.300' is not an IP address"):
            t.normalize_entries(t.NEIGH, [nb("10.213.0.300", M3)], state="merged")
        with pytest.raises(v.InputError, match=r"entries\[0\]\.mac: '02:42:0a:d5:00' is not a MAC address"):
            t.normalize_entries(t.FDB, [fdb("02:42:0a:d5:00", D2)], state="merged")

    def test_dst_family_must_match_local(self):
        assert t.normalize_entries(t.FDB, [fdb(M3, D2)], state="merged", local=D1) == [fdb(M3, D2)]
        with pytest.raises(v.InputError, match=r"entries\[0\]\.dst: 2001:db8::2 is IPv6 .* 198\.18\.1\.1 is IPv4"):
            t.normalize_entries(t.FDB, [fdb(M3, "2001:db8::2")], state="merged", local=D1)
        with pytest.raises(v.InputError, match=r"entries\[0\]\.dst: 198\.18\.1\.2 is IPv4 .* 2001:db8::1 is IPv6"):
            t.normalize_entries(t.FDB, [fdb(M3, D2)], state="merged", local="2001:db8::1")

    def test_empty_and_none(self):
        assert t.normalize_entries(t.FDB, None, state="deleted") == []
        assert t.normalize_entries(t.NEIGH, [], state="overridden") == []


# --- plan: every state ---------------------------------------------------------------------------------------------


class TestPlanStates:
    def test_unknown_state(self):
        with pytest.raises(v.InputError, match="state: 'purged' is not one of merged"):
            plan_fdb("purged", [], [])

    def test_merged_adds_and_corrects_but_never_removes(self):
        current = [fdb(M3, D2), fdb(M4, D2), fdb(ZERO, D2)]
        r = plan_fdb("merged", [fdb(M3, D3), fdb(M5, D3), fdb(ZERO, D3)], current)
        assert [(op["action"], op["entry"]) for op in r["ops"]] == [
            ("upsert", fdb(ZERO, D3)),
            ("upsert", fdb(M3, D3)),
            ("upsert", fdb(M5, D3)),
        ]
        assert r["after"] == [fdb(ZERO, D2), fdb(ZERO, D3), fdb(M3, D3), fdb(M4, D2), fdb(M5, D3)]
        assert r["before"] == [fdb(ZERO, D2), fdb(M3, D2), fdb(M4, D2)]
        assert r["changed"] is True

    def test_merged_is_idempotent(self):
        current = [fdb(M3, D2), fdb(ZERO, D2), fdb(ZERO, D3)]
        r = plan_fdb("merged", [fdb(ZERO, D3), fdb(M3, D2)], current)
        assert r["ops"] == [] and r["commands"] == [] and r["changed"] is False
        assert r["after"] == r["before"]

    def test_replaced_makes_given_keys_exact(self):
        current = [fdb(M3, D2), fdb(M4, D2), fdb(ZERO, D1), fdb(ZERO, D2)]
        r = plan_fdb("replaced", [fdb(M3, D3), fdb(ZERO, D2), fdb(ZERO, D3)], current)
        assert r["after"] == [fdb(ZERO, D2), fdb(ZERO, D3), fdb(M3, D3), fdb(M4, D2)]
        deleted = [op["entry"] for op in r["ops"] if op["action"] == "delete"]
        assert deleted == [fdb(ZERO, D1)]  # M3's dst is replaced in place; M4's key was not given: kept

    def test_merged_vs_replaced_on_the_flood_key(self):
        current = [fdb(ZERO, D1)]
        assert plan_fdb("merged", [fdb(ZERO, D2)], current)["after"] == [fdb(ZERO, D1), fdb(ZERO, D2)]
        assert plan_fdb("replaced", [fdb(ZERO, D2)], current)["after"] == [fdb(ZERO, D2)]

    def test_overridden_removes_every_other_owned_entry(self):
        current = [fdb(M3, D2), fdb(M4, D2), fdb(ZERO, D1), fdb(ZERO, D2)]
        r = plan_fdb("overridden", [fdb(M3, D2), fdb(ZERO, D2)], current)
        assert r["after"] == [fdb(ZERO, D2), fdb(M3, D2)]
        assert r["commands"] == [
            f"bridge -n ovl-256 fdb del {ZERO} dev vxlan0 dst {D1} self",
            f"bridge -n ovl-256 fdb del {M4} dev vxlan0 dst {D2} self",
        ]

    def test_overridden_with_nothing_empties_the_table(self):
        r = plan_neigh("overridden", [], [nb("10.213.0.3", M3), nb("fd00::3", M4)])
        assert r["after"] == []
        assert r["commands"] == [
            "ip -n ovl-256 neigh del 10.213.0.3 dev vxlan0",
            "ip -n ovl-256 neigh del fd00::3 dev vxlan0",
        ]

    def test_deleted_given_entries_only_when_they_match(self):
        current = [fdb(M3, D2), fdb(M4, D2), fdb(ZERO, D1), fdb(ZERO, D2)]
        r = plan_fdb("deleted", [fdb(M3, D2), fdb(M4, D3), fdb(ZERO, D1)], current)
        assert [op["entry"] for op in r["ops"]] == [fdb(ZERO, D1), fdb(M3, D2)]  # M4 has another dst: kept
        assert all(op["action"] == "delete" for op in r["ops"])
        assert r["after"] == [fdb(ZERO, D2), fdb(M4, D2)]

    def test_deleted_key_only_removes_every_member_of_the_key(self):
        current = [fdb(M3, D2), fdb(ZERO, D1), fdb(ZERO, D2)]
        r = plan_fdb("deleted", [{"mac": ZERO, "dst": None}], current)
        assert r["after"] == [fdb(M3, D2)]
        assert len(r["ops"]) == 2
        r = plan_neigh("deleted", [nb("10.213.0.3", None)], [nb("10.213.0.3", M3), nb("10.213.0.4", M4)])
        assert r["commands"] == ["ip -n ovl-256 neigh del 10.213.0.3 dev vxlan0"]

    def test_deleted_without_entries_removes_all(self):
        current = [fdb(M3, D2), fdb(ZERO, D1)]
        r = plan_fdb("deleted", [], current)
        assert r["after"] == []
        assert {op["action"] for op in r["ops"]} == {"delete"}
        assert len(r["ops"]) == 2

    def test_deleted_absent_entries_is_a_no_op(self):
        r = plan_neigh("deleted", [nb("10.213.0.9", M3), nb("10.213.0.3", None)], [nb("10.213.0.4", M4)])
        assert r["ops"] == [] and r["changed"] is False

    def test_gathered_never_changes(self):
        current = [nb("10.213.0.4", M4), nb("10.213.0.3", M3)]
        r = plan_neigh("gathered", [nb("10.213.0.9", M5)], current)
        assert r["ops"] == [] and r["changed"] is False
        assert r["before"] == r["after"] == [nb("10.213.0.3", M3), nb("10.213.0.4", M4)]

    def test_rendered_ignores_the_current_table(self):
        r = plan_fdb("rendered", [fdb(M3, D2), fdb(ZERO, D2)], [fdb(M3, D2), fdb(M4, D1)], netns=None)
        assert r["commands"] == [
            f"bridge fdb append {ZERO} dev vxlan0 dst {D2} self permanent",
            f"bridge fdb replace {M3} dev vxlan0 dst {D2} self permanent",
        ]
        assert r["after"] == [fdb(ZERO, D2), fdb(M3, D2)]

    def test_neigh_change_of_mac_is_one_replace(self):
        r = plan_neigh("replaced", [nb("10.213.0.3", M4)], [nb("10.213.0.3", M3)])
        assert r["commands"] == ["ip -n ovl-256 neigh replace 10.213.0.3 lladdr " + M4 + " dev vxlan0 nud permanent"]
        assert r["after"] == [nb("10.213.0.3", M4)]

    @pytest.mark.parametrize("state", ["merged", "replaced", "overridden"])
    def test_fdb_change_of_dst_is_one_replace(self, state):
        # a move: the MAC's one destination switches to the new VTEP in place, never deleted and then added
        r = plan_fdb(state, [fdb(M3, D3), fdb(M4, D2)], [fdb(M3, D1), fdb(M4, D2)])
        assert r["ops"] == [
            {
                "action": "upsert",
                "entry": fdb(M3, D3),
                "command": f"bridge -n ovl-256 fdb replace {M3} dev vxlan0 dst {D3} self permanent",
            }
        ]
        assert r["after"] == [fdb(M3, D3), fdb(M4, D2)]

    @pytest.mark.parametrize("state", ["merged", "replaced", "overridden"])
    def test_address_reuse_is_one_neigh_replace_and_the_new_mac_added_before_the_old_goes(self, state):
        # 10.213.0.3 now belongs to M5 on D3: its ARP entry is replaced in place; M5's FDB entry is written and,
        # overridden, M3's goes (deletes are sent before upserts, but never for the key being written)
        r = plan_neigh(state, [nb("10.213.0.3", M5)], [nb("10.213.0.3", M3)])
        assert [(op["action"], op["entry"]) for op in r["ops"]] == [("upsert", nb("10.213.0.3", M5))]
        r = plan_fdb(state, [fdb(M5, D3)], [fdb(M3, D1)])
        expected = [("upsert", fdb(M5, D3))]
        if state == "overridden":
            expected.insert(0, ("delete", fdb(M3, D1)))
        assert [(op["action"], op["entry"]) for op in r["ops"]] == expected

    def test_flood_key_keeps_append_and_del(self):
        r = plan_fdb("overridden", [fdb(ZERO, D2), fdb(ZERO, D3)], [fdb(ZERO, D1), fdb(ZERO, D2)])
        assert r["commands"] == [
            f"bridge -n ovl-256 fdb del {ZERO} dev vxlan0 dst {D1} self",
            f"bridge -n ovl-256 fdb append {ZERO} dev vxlan0 dst {D3} self permanent",
        ]

    def test_exclusive_key_with_stray_members_keeps_only_the_wanted_one(self):
        # a unicast MAC appended twice by hand: merged leaves exactly the wanted destination
        r = plan_fdb("merged", [fdb(M3, D2)], [fdb(M3, D1), fdb(M3, D2)])
        assert r["after"] == [fdb(M3, D2)]
        assert r["ops"][0] == {
            "action": "delete",
            "entry": fdb(M3, D1),
            "command": f"bridge -n ovl-256 fdb del {M3} dev vxlan0 dst {D1} self",
        }


# --- plan: properties over all states ------------------------------------------------------------------------------

CURRENT = [fdb(M3, D1), fdb(M4, D2), fdb(ZERO, D1), fdb(ZERO, D2)]
WANTED = [
    [],
    [fdb(M3, D2)],
    [fdb(M3, D1), fdb(ZERO, D3)],
    [fdb(M5, D3), fdb(ZERO, D1), fdb(ZERO, D2), fdb(M4, D2)],
]


@pytest.mark.parametrize("state", ["merged", "replaced", "overridden", "deleted", "gathered"])
@pytest.mark.parametrize("wanted", WANTED)
def test_prediction_matches_the_operations(state, wanted):
    r = plan_fdb(state, wanted, CURRENT)
    assert r["after"] == simulate(t.FDB, CURRENT, r["ops"])
    assert_deletes_first(r)
    assert r["commands"] == [op["command"] for op in r["ops"]]
    assert r["changed"] is bool(r["ops"])
    # a second run from the predicted state has nothing left to do
    again = plan_fdb(state, wanted, r["after"])
    assert again["ops"] == [], (state, wanted, again["ops"])


@pytest.mark.parametrize("wanted", WANTED)
def test_state_semantics(wanted):
    after = {s: {(e["mac"], e["dst"]) for e in plan_fdb(s, wanted, CURRENT)["after"]} for s in t.STATES[:4]}
    want = {(e["mac"], e["dst"]) for e in wanted}
    cur = {(e["mac"], e["dst"]) for e in CURRENT}
    assert want <= after["merged"]
    assert after["overridden"] == want
    assert want <= after["replaced"] <= cur | want
    # replaced differs from overridden only by the keys that were not given
    given = {pair[0] for pair in want}
    assert {p for p in after["replaced"] if p[0] in given} == want
    assert {p for p in after["replaced"] if p[0] not in given} == {p for p in cur if p[0] not in given}
    assert after["deleted"] == (cur - want if wanted else set())


def test_commands_with_and_without_netns():
    wanted = [nb("10.213.0.3", M3)]
    assert plan_neigh("merged", wanted, [], netns=None)["commands"] == [
        f"ip neigh replace 10.213.0.3 lladdr {M3} dev vxlan0 nud permanent"
    ]
    assert plan_neigh("merged", wanted, [], netns="ovl-1")["commands"] == [
        f"ip -n ovl-1 neigh replace 10.213.0.3 lladdr {M3} dev vxlan0 nud permanent"
    ]
    assert plan_fdb("deleted", [], [fdb(ZERO, D1)], netns=None)["commands"] == [
        f"bridge fdb del {ZERO} dev vxlan0 dst {D1} self"
    ]


def test_command_lines_of_every_kind():
    """One comprehension per kind of line; a brace in a name is just a character (shell-quoted)."""
    pairs = [(ZERO, D1), (M3, D2)]
    assert t.FDB.command_lines("upsert", pairs, "vx{0}", "ovl-1") == [
        f"bridge -n ovl-1 fdb append {ZERO} dev 'vx{{0}}' dst {D1} self permanent",
        f"bridge -n ovl-1 fdb replace {M3} dev 'vx{{0}}' dst {D2} self permanent",
    ]
    assert t.FDB.command_lines("delete", pairs, "vxlan0", None) == [
        f"bridge fdb del {ZERO} dev vxlan0 dst {D1} self",
        f"bridge fdb del {M3} dev vxlan0 dst {D2} self",
    ]
    pairs = [("10.213.0.3", M3), ("fd00::3", M4)]
    assert t.NEIGH.command_lines("upsert", pairs, "vxlan0", None) == [
        f"ip neigh replace 10.213.0.3 lladdr {M3} dev vxlan0 nud permanent",
        f"ip neigh replace fd00::3 lladdr {M4} dev vxlan0 nud permanent",
    ]
    assert t.NEIGH.command_lines("delete", pairs, "vxlan0", "ovl-1") == [
        "ip -n ovl-1 neigh del 10.213.0.3 dev vxlan0",
        "ip -n ovl-1 neigh del fd00::3 dev vxlan0",
    ]
    assert command(t.FDB, "upsert", fdb(ZERO, D1), "vxlan0", None) == (
        f"bridge fdb append {ZERO} dev vxlan0 dst {D1} self permanent"
    )


def test_command_lines_quote_every_word_for_the_shell():
    """A name with shell syntax in it is one word of the pasted line, never a second command."""
    import shlex

    dev, netns = "vx;touch${IFS}x", "ns$(id)"
    lines = t.FDB.command_lines("delete", [(M3, D1)], dev, netns) + t.NEIGH.command_lines(
        "upsert", [(D2, M3)], dev, None
    )
    assert lines == [
        f"bridge -n 'ns$(id)' fdb del {M3} dev 'vx;touch${{IFS}}x' dst {D1} self",
        f"ip neigh replace {D2} lladdr {M3} dev 'vx;touch${{IFS}}x' nud permanent",
    ]
    assert shlex.split(lines[0]) == ["bridge", "-n", netns, "fdb", "del", M3, "dev", dev, "dst", D1, "self"]


def test_a_no_change_run_shares_its_entries():
    wanted = [fdb(M3, D1), fdb(ZERO, D1), fdb(ZERO, D2)]
    current = [fdb(ZERO, D2), fdb(M3, D1), fdb(ZERO, D1)]
    result = plan_fdb("overridden", wanted, current)
    assert result["ops"] == [] and result["before"] == sorted(wanted, key=tables.sort_key(t.FDB))
    assert all(a is b for a, b in zip(result["before"], result["after"], strict=True))
    # from an empty table, after is what the upserts write: the same entries
    result = plan_fdb("merged", wanted, [])
    assert [id(e) for e in result["after"]] == [id(op["entry"]) for op in result["ops"]]
    assert result["after"] == sorted(wanted, key=tables.sort_key(t.FDB))


@pytest.mark.parametrize(
    ("spec", "want", "cur", "settled"),
    [
        (t.FDB, [(M4, D2), (M3, D1)], [(M3, D1), (M4, D2)], True),  # by key, in any order
        (t.FDB, [(M3, D1), (M3, D2)], [(M3, D2), (M3, D1)], False),  # a unicast MAC wanted twice: the planner's
        (t.FDB, [(M3, D1), (M4, D2)], [(M3, D1), (M3, D1)], False),  # a row read twice: the planner's
        (t.FDB, [(M3, D1), (M4, D2)], [(M3, D1), (M4, D1)], False),
        (t.FDB, [(ZERO, D2), (M3, D1), (ZERO, D1)], [(ZERO, D1), (ZERO, D2), (M3, D1)], True),  # a flood list
        (t.FDB, [(ZERO, D2), (M3, D1), (ZERO, D2)], [(ZERO, D1), (ZERO, D2), (M3, D1)], False),
        (t.NEIGH, [("10.213.0.3", None), ("10.213.0.4", M3)], [("10.213.0.4", M3), ("10.213.0.3", None)], True),
        (t.NEIGH, [("10.213.0.3", M3), ("10.213.0.3", M3)], [("10.213.0.3", M3), ("10.213.0.4", M3)], False),
    ],
)
def test_settled_overridden_by_key(spec, want, cur, settled):
    """A no-change overridden run is told by two key -> member maps, or by sets when there is a flood list."""
    assert t._settled(spec, "overridden", want, cur) is settled
    if settled:
        kf, mf = spec.key_field, spec.member_field
        result = t.plan(spec, "overridden", [{kf: k, mf: m} for k, m in want], cur, dev="vxlan0")
        assert result["ops"] == [] and result["before"] == result["after"]


def test_ops_are_sorted_deletes_then_upserts():
    current = [fdb(M5, D1), fdb(M3, D1), fdb(ZERO, D1)]
    r = plan_fdb("overridden", [fdb(M4, D2), fdb(ZERO, D3), fdb(M3, D2)], current)
    assert [(op["action"], op["entry"]["mac"]) for op in r["ops"]] == [
        ("delete", ZERO),
        ("delete", M5),
        ("upsert", ZERO),
        ("upsert", M3),
        ("upsert", M4),
    ]


def test_render_lines():
    assert t.render_lines(t.FDB, [fdb(M3, D2)], "vxlan0") == f"{M3} dev vxlan0 dst {D2} self permanent\n"
    assert t.render_lines(t.NEIGH, [nb("10.213.0.3", M3)], "vxlan0") == f"10.213.0.3 dev vxlan0 lladdr {M3} PERMANENT\n"
    assert t.render_lines(t.NEIGH, [], "vxlan0") == ""


# --- _validate --------------------------------------------------------------------------------------------------------


class TestValidate:
    def test_mac(self):
        assert v.mac("02-42-0A-D5-00-03", "mac") == M3
        assert v.mac(ZERO, "mac", allow_zero=True) == ZERO
        assert v.mac("01:00:5e:00:00:01", "mac") == "01:00:5e:00:00:01"  # multicast fine unless unicast is asked
        for bad in ("02:42:0a:d5:00", "02:42:0a:d5:00:0g", "0242.0ad5.0003", "", "02:42:0a:d5:00:03:04"):
            with pytest.raises(v.InputError, match=r"^mac: .* is not a MAC address"):
                v.mac(bad, "mac")
        with pytest.raises(v.InputError, match="all-zero"):
            v.mac(ZERO, "mac")
        with pytest.raises(v.InputError, match="multicast"):
            v.mac("03:00:00:00:00:01", "mac", unicast=True)

    def test_ip(self):
        assert v.ip(" 198.18.1.1 ", "local") == D1
        assert v.ip("2001:DB8:0:0::1", "local") == "2001:db8::1"
        for bad in ("198.18.1", "198.18.1.256", "10.0.0.1/24", "2001:db8::1::2", "host"):
            with pytest.raises(v.InputError, match=rf"^local: '{bad}' is not an IP address"):
                v.ip(bad, "local")
        with pytest.raises(v.InputError, match="IPv6 address; IPv4 is needed"):
            v.ip("::1", "local", family=4)

    @pytest.mark.parametrize("name", ["eth0", "vxlan0", "a", "veth-hosta12345"])
    def test_interface_ok(self, name):
        assert v.interface(name, "name") == name

    @pytest.mark.parametrize(
        ("name", "why"),
        [
            ("veth-hosta123456", "must be 1 to 15 characters"),
            ("", "must be 1 to 15 characters"),
            ("br/0", "is not a valid interface name"),
            ("br 0", "is not a valid interface name"),
            ("br\t0", "is not a valid interface name"),
            ("eth0:1", "is not a valid interface name"),
            (".", "is not a valid interface name"),
            ("..", "is not a valid interface name"),
        ],
    )
    def test_interface_bad(self, name, why):
        with pytest.raises(v.InputError) as exc:
            v.interface(name, "name")
        assert str(exc.value).startswith(f"name: {name!r} {why}")

    def test_netns_name(self):
        assert v.netns_name("ovl-256", "netns") == "ovl-256"
        for bad in ("a/b", "", "..", "a b", "x" * 256):
            with pytest.raises(v.InputError, match=r"^netns: .* is not a valid netns name"):
                v.netns_name(bad, "netns")

    @pytest.mark.parametrize(
        ("fn", "good", "bad"),
        [
            (v.vni, [1, 256, 16777215, "42"], [0, 16777216, -1]),
            (v.port, [1, 4789, 65535], [0, 65536, 70000]),
            (v.mtu, [68, 1450, 65535], [67, 65536]),
        ],
    )
    def test_ranges(self, fn, good, bad):
        for value in good:
            assert fn(value) == int(value)
        for value in bad:
            with pytest.raises(v.InputError, match=rf"^{fn.__name__}: {value} is outside"):
                fn(value)
        for value in (True, "1.5", "x", None, 4789.5):
            with pytest.raises(v.InputError, match="is not an integer"):
                fn(value)

    def test_interface_address(self):
        assert v.interface_address("10.213.0.2/24", "address") == ("10.213.0.2", 24)
        assert v.interface_address("FD00:213::2/64", "address") == ("fd00:213::2", 64)
        with pytest.raises(v.InputError, match="needs a prefix length"):
            v.interface_address("10.213.0.2", "address")
        with pytest.raises(v.InputError, match=r"^address: '10\.213\.0\.256/24' is not an address"):
            v.interface_address("10.213.0.256/24", "address")

    def test_derive_mac(self):
        assert _model.derive_mac("10.213.0.2") == "02:42:0a:d5:00:02"
        assert _model.derive_mac("10.213.0.3") == "02:42:0a:d5:00:03"
        six = _model.derive_mac("fd00:213::2")
        assert six == _model.derive_mac("fd00:213:0::2"), "stable"
        assert six != _model.derive_mac("fd00:213::3")
        first = int(six[:2], 16)
        assert first & 0x02 and not first & 0x01, "locally administered unicast"
        assert v.mac(six, "mac", unicast=True) == six

    def test_family(self):
        assert _model.family(D1) == 4
        assert _model.family("2001:db8::1") == 6


# --- the planner at table scale --------------------------------------------------------------------------------


def test_plan_is_linear_and_predicts_the_kernel():
    """20k exclusive upserts (rebuilding the predicted table once per upsert took minutes at this size)."""
    macs = [f"02:01:00:00:{i >> 8:02x}:{i & 255:02x}" for i in range(20000)]
    wanted = [{"mac": mac, "dst": f"198.18.1.{i % 200 + 1}"} for i, mac in enumerate(macs)]
    current = [(e["mac"], "198.18.2.1") for e in wanted[::2]]
    result = t.plan(t.FDB, "overridden", wanted, current, dev="vxlan0")
    assert result["after"] == sorted(wanted, key=tables.sort_key(t.FDB))
    assert len(result["ops"]) == 20000  # every MAC written once; an existing one's dst replaced in place
    assert t.plan(t.FDB, "overridden", wanted, pairs(t.FDB, result["after"]), dev="vxlan0")["ops"] == []
