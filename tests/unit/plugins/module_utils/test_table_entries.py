# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The table modules' own entry validator (_validate.table_entries / Field) and the bounded result (plan's counts,
tables=False; converge's invocation), on plain data."""

from __future__ import annotations

import random
import time

import pytest

from ansible_collections.netfleet.overlay.plugins.module_utils import _table as t
from ansible_collections.netfleet.overlay.plugins.module_utils import _validate as v

ZERO = "00:00:00:00:00:00"

MACS = [
    "02:42:0a:d5:00:03",
    "02-42-0A-D5-00-03",
    " 02:42:0a:d5:00:03 ",
    "02:42:0A:d5:00:03",
    "01:00:5e:00:00:01",
    "ff:ff:ff:ff:ff:ff",
    "03:42:0a:d5:00:03",
    ZERO,
    "00-00-00-00-00-00",
    "02:42:0a:d5:00",
    "02:42:0a:d5:00:0g",
    "",
    5,
    None,
    ["02:42:0a:d5:00:03"],
]
IPS = [
    "10.213.0.3",
    "010.213.0.3",
    " 10.213.0.3",
    "10.213.0.300",
    "255.255.255.255",
    "0.0.0.0",
    "2001:DB8:0::2",
    "2001:db8::2",
    "fe80::2%eth0",
    "10.213.0",
    "",
    7,
    {"a": 1},
]


def _outcome(call):
    try:
        return ("ok", call())
    except v.InputError as exc:
        return ("error", str(exc))


@pytest.mark.parametrize("kind", ["unicast_mac", "mac_or_zero"])
@pytest.mark.parametrize("value", MACS)
def test_mac_field_is_the_full_check(kind, value):
    """The fast path accepts exactly what the full check accepts, with the same normal form or message."""
    field = v.Field("mac", kind)
    full = _outcome(lambda: v.mac(value, "entries[4].mac", unicast=True, allow_zero=kind == "mac_or_zero"))
    assert _outcome(lambda: field.normal(value, 4)) == full
    assert _outcome(lambda: field.normal(value, 4)) == full  # a second time: from the cache


@pytest.mark.parametrize("value", IPS)
def test_ip_field_is_the_full_check(value):
    field = v.Field("dst", "ip")
    full = _outcome(lambda: v.ip(value, "entries[2].dst"))
    assert _outcome(lambda: field.normal(value, 2)) == full
    assert _outcome(lambda: field.normal(value, 2)) == full


def test_unknown_field_kind():
    with pytest.raises(ValueError, match="unknown field kind"):
        v.Field("mac", "mac")


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"mac": "02:42:0a:d5:00:03"}, r"^entries: expected a list of entries \(dicts\), got "),
        ([{"mac": "02:42:0a:d5:00:03", "dst": "198.18.1.2", "vni": 1}], r"^entries\[0\]: unknown key\(s\) vni \("),
        ([{"dst": "198.18.1.2", "x": 1}], r"^entries\[0\]: unknown key\(s\) x \(an entry takes mac and dst\)$"),
        ([{"mac": "02:42:0a:d5:00:03", "dst": "198.18.1.2"}, "02:42:0a:d5:00:04"], r"^entries\[1\]: expected a dict"),
        ([{"mac": "", "dst": "198.18.1.2"}], r"^entries\[0\]\.mac is required$"),
        ([{"mac": "02:42:0a:d5:00:03", "dst": None}], r"^entries\[0\]\.dst is required with state=merged$"),
        (
            [{"mac": f"02:42:0a:d5:00:{i:02x}", "dst": "198.18.1.2"} for i in range(7)]
            + [{"mac": "03:42:0a:d5:00:09", "dst": "198.18.1.2"}],
            r"^entries\[7\]\.mac: '03:42:0a:d5:00:09' is a multicast/broadcast MAC",
        ),
        (
            [{"mac": "02:42:0a:d5:00:03", "dst": "198.18.1.2"}, {"mac": "02:42:0A:D5:00:03", "dst": "198.18.1.3"}],
            r"^entries\[1\]: duplicate key 02:42:0a:d5:00:03 \(already given as entries\[0\]\)$",
        ),
        (
            [{"mac": ZERO, "dst": "198.18.1.2"}, {"mac": ZERO, "dst": "198.018.1.2"}],
            r"^entries\[1\]\.dst: '198\.018\.1\.2' is not an IP address$",
        ),
    ],
)
def test_errors_name_the_entry_the_field_and_the_value(entries, message):
    with pytest.raises(v.InputError, match=message):
        t.normalize_pairs(t.FDB, entries, state="merged")


def test_normalize_pairs_and_entries_agree():
    raw = [
        {"mac": "02-42-0A-D5-00-03", "dst": " 2001:DB8:0::2 "},
        {"mac": ZERO, "dst": "2001:db8::3"},
        {"mac": ZERO, "dst": "2001:db8::2"},
    ]
    pairs = t.normalize_pairs(t.FDB, raw, state="merged", local="2001:db8::1")
    assert pairs == [("02:42:0a:d5:00:03", "2001:db8::2"), (ZERO, "2001:db8::3"), (ZERO, "2001:db8::2")]
    assert t.normalize_entries(t.FDB, raw, state="merged") == [{"mac": k, "dst": m} for k, m in pairs]
    assert t.normalize_pairs(t.NEIGH, [{"ip": "10.0.0.1"}], state="deleted") == [("10.0.0.1", None)]


def test_family_check_names_the_first_entry_of_the_other_family():
    pairs = [("02:42:0a:d5:00:03", "198.18.1.2"), ("02:42:0a:d5:00:04", "2001:db8::2")]
    t.check_families(pairs, None)
    with pytest.raises(v.InputError, match=r"^entries\[1\]\.dst: 2001:db8::2 is IPv6 but .* 198\.18\.1\.1 is IPv4"):
        t.check_families(pairs, "198.18.1.1")
    with pytest.raises(v.InputError, match=r"^entries\[0\]\.dst: 198\.18\.1\.2 is IPv4"):
        t.check_families(pairs, "2001:db8::1")


def test_100k_entries_in_well_under_a_second():
    """The point of the validator: 100,000 entries, already normal, in one pass (generous bound: a loaded CI)."""
    raw = [
        {
            "ip": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
            "mac": f"02:42:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
        }
        for i in range(100_000)
    ]
    start = time.perf_counter()
    pairs = t.normalize_pairs(t.NEIGH, raw, state="overridden")
    assert time.perf_counter() - start < 2.0
    assert len(pairs) == 100_000 and pairs[5] == ("10.0.0.5", "02:42:00:00:00:05")


# --- bounded results -------------------------------------------------------------------------------------------

KEYS = [f"02:42:0a:d5:00:0{i}" for i in range(1, 6)] + [ZERO]
DSTS = ["198.18.1.2", "198.18.1.3", "198.18.1.4"]


@pytest.mark.parametrize("state", ["merged", "replaced", "overridden", "deleted", "gathered", "rendered"])
def test_counts_match_the_tables_and_tables_false_plans_the_same(state):
    rng = random.Random(state)
    for _case in range(300):
        current = [(rng.choice(KEYS), rng.choice(DSTS)) for _row in range(rng.randint(0, 6))]
        wanted, seen = [], set()
        for _entry in range(rng.randint(0, 5)):
            key = rng.choice(KEYS)
            dst = None if state == "deleted" and rng.random() < 0.3 else rng.choice(DSTS)
            dup = (key, dst) if key == ZERO else key
            if dup not in seen:
                seen.add(dup)
                wanted.append({"mac": key, "dst": dst})
        full = t.plan(t.FDB, state, wanted, current, dev="vxlan0")
        lean = t.plan(t.FDB, state, wanted, current, dev="vxlan0", tables=False)
        assert "before" not in lean and "after" not in lean
        assert lean["ops"] == full["ops"] and lean["commands"] == full["commands"]
        assert lean["changed"] == full["changed"]
        assert (
            lean["counts"]
            == full["counts"]
            == {
                "before": len(full["before"]),
                "after": len(full["after"]),
                "deleted": sum(op["action"] == "delete" for op in full["ops"]),
                "written": sum(op["action"] == "upsert" for op in full["ops"]),
            }
        ), (state, wanted, current)


class FakeModule:
    def __init__(self, **params):
        self.params = {"netns": None, "dev": "vxlan0", "state": "rendered", "entries": [], "full_tables": False}
        self.params.update(params)
        self.check_mode = False
        self._diff = False


def test_rendered_result_and_a_short_invocation():
    entries = [{"ip": f"10.0.{i >> 8}.{i & 255}", "mac": f"02:42:0a:00:{i >> 8:02x}:{i & 255:02x}"} for i in range(300)]
    out = t.converge(FakeModule(entries=entries), t.NEIGH)
    assert out["changed"] is False and len(out["rendered"]) == 300 and out["commands"] == out["rendered"]
    assert out["invocation"]["module_args"]["entries"] == "300 entries (not echoed back; see counts)"
    assert out["invocation"]["module_args"]["dev"] == "vxlan0"
    few = entries[: t.INVOCATION_ENTRIES]
    assert t.converge(FakeModule(entries=few), t.NEIGH)["invocation"]["module_args"]["entries"] == few
