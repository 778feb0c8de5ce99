# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Table helpers that only tests use: entries as ``(key, member)`` pairs, and the plain pyroute2 read and write
(one request per entry) that the batched raw-netlink path of :mod:`_table` is checked against."""

from __future__ import annotations

from ansible_collections.netfleet.overlay.plugins.module_utils import _table as t
from support import pyroute2_reference as ref


def pairs(spec: t.TableSpec, entries: list[dict]) -> list[tuple]:
    """Entry dicts as the ``(key, member)`` pairs that :func:`_table.plan` takes."""
    return [(e[spec.key_field], e[spec.member_field]) for e in entries]


def command(spec: t.TableSpec, action: str, entry: dict, dev: str, netns: str | None) -> str:
    """The command line of one entry's operation (:meth:`_table.TableSpec.command_lines` of one pair)."""
    return spec.command_lines(action, [(entry[spec.key_field], entry[spec.member_field])], dev, netns)[0]


def sort_key(spec: t.TableSpec):
    """The order of :func:`_table.plan`'s ``before``/``after``, for entry dicts."""
    return lambda entry: (entry[spec.key_field], entry.get(spec.member_field) or "")


def read_entries(ns, spec: t.TableSpec, index: int) -> list[dict]:
    """:func:`_table.read` as entry dicts (``{'mac', 'dst'}`` / ``{'ip', 'mac'}``)."""
    return [spec.entry(key, member) for key, member in t.read(ns, spec, index)]


def read_plain(ns, spec: t.TableSpec, index: int) -> list[dict]:
    """:func:`read_entries` through pyroute2's own dump and parser."""
    rows = ref.fdb_dump(ns, index) if spec.name == "fdb" else ref.neigh_dump(ns, index)
    return [spec.entry(r[spec.key_field], r[spec.member_field]) for r in rows if r["permanent"]]


def apply_plain(ns, spec: t.TableSpec, index: int, ops: list[dict]) -> None:
    """:func:`_table.apply` with one pyroute2 request per entry."""
    errors = []
    for op in ops:
        try:
            ref.table_write(ns, spec.name, index, op)
        except Exception as exc:  # each entry's failure is reported by name
            errors.append(str(exc))
    if errors:
        raise t.TableApplyError(spec.name, errors, [op["command"] for op in ops])


def gathered_and_rendered(
    nf, host: str, module: str, *, dev: dict, entries: list[dict], missing: str, scenarios, namespaces
):
    """A table module's kernel test: fill the table with ``entries``, gather it, render ``entries`` for a device
    in a netns that does not exist (``missing``), then run the four-step ``scenarios`` (``nf.four_steps``).

    Checks that the three setup runs succeeded, that gathering and rendering changed nothing and that rendering
    did not touch the host; returns ``(gathered entries, rendered commands, the scenarios' results)``.
    """
    setup: list = []
    results = nf.four_steps(
        host,
        scenarios,
        namespaces,
        setup=[
            nf.Call(module, {**dev, "entries": entries}),
            nf.Call(module, {**dev, "state": "gathered"}),
            nf.Call(module, {"netns": missing, "dev": "vxlan9", "state": "rendered", "entries": entries}),
        ],
        setup_results=setup,
    )
    for result in setup:
        nf.assert_ok(result)
    _merged, gathered, rendered = setup
    assert gathered["changed"] is False and rendered["changed"] is False
    assert not nf.netns_exists(missing), "rendered must not touch the host"
    return gathered["gathered"], rendered["rendered"], results
