# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""overlay_host's table writes in a move or an address reuse (issue 15), with a namespace that records them: the
new FDB entries first, then the ARP entries, and the FDB entries that go last."""

from __future__ import annotations

import pytest

from ansible_collections.netfleet.overlay.plugins.module_utils import _table
from ansible_collections.netfleet.overlay.plugins.module_utils._host import HostConverger

OLD, NEW = "02:00:00:00:00:0a", "02:00:00:00:00:0b"


class Recorder:
    """The part of a namespace that _table.apply writes through: every write, in order; ``fail`` fails one table."""

    def __init__(self, fail: str | None = None):
        self.writes: list[tuple] = []
        self.fail = fail

    def table_write_many(self, table: str, index: int, ops: list[dict]) -> list[str]:
        self.writes += [(table, op["action"], *op["entry"].values()) for op in ops]
        return [f"{table}: refused"] * len(ops) if table == self.fail else []


def reuse_plans():
    """10.230.0.60 was OLD's on 198.18.1.1; now it is NEW's on 198.18.1.2."""
    fdb = _table.plan(_table.FDB, "overridden", [{"mac": NEW, "dst": "198.18.1.2"}], [(OLD, "198.18.1.1")], dev="v")
    neigh = _table.plan(
        _table.NEIGH, "overridden", [{"ip": "10.230.0.60", "mac": NEW}], [("10.230.0.60", OLD)], dev="v"
    )
    return fdb, neigh


def test_address_reuse_adds_the_new_mac_then_switches_arp_then_drops_the_old_mac():
    fdb, neigh = reuse_plans()
    ns = Recorder()
    HostConverger({"vtep": "198.18.1.3", "preserve_vteps": []}, check_mode=False)._apply_tables(
        ns, 7, fdb["ops"], neigh["ops"]
    )
    assert ns.writes == [
        ("fdb", "upsert", NEW, "198.18.1.2"),
        ("neigh", "upsert", "10.230.0.60", NEW),
        ("fdb", "delete", OLD, "198.18.1.1"),
    ]


def test_a_failed_step_reports_what_was_applied_before_it():
    fdb, neigh = reuse_plans()
    converger = HostConverger({"vtep": "198.18.1.3", "preserve_vteps": []}, check_mode=False)
    with pytest.raises(_table.TableApplyError):
        converger._apply_tables(Recorder(fail="neigh"), 7, fdb["ops"], neigh["ops"])
    assert converger.changed is True
    assert converger.commands == [fdb["ops"][1]["command"], neigh["ops"][0]["command"]]
