# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: the table reconciler behind the neigh and fdb modules.  May change without notice.
"""Reconcile a device's static table (ARP/ND or vxlan FDB) against the wanted entries, by key.

:func:`read` gives a device's owned entries as ``(key, member)`` pairs; planning is pure: :func:`plan` takes the
wanted entries and those pairs and returns the operations, the predicted ``after`` and the equivalent
``ip``/``bridge`` command lines; :func:`apply` is the one place that sends table changes to the kernel.  Both
kernel sides use the batched raw-netlink transport.

Entries are grouped by their key (the MAC for FDB, the IP for neighbours).  An *exclusive* group holds one
member (a unicast MAC has one destination, an IP one MAC); the FDB flood group ``00:00:00:00:00:00`` is
*additive*, one member per destination (the head-end replication list).
"""

from __future__ import annotations

import contextlib
import gc
from dataclasses import dataclass
from operator import itemgetter

from ansible_collections.netfleet.overlay.plugins.module_utils import _cmdline, _lock
from ansible_collections.netfleet.overlay.plugins.module_utils import _validate as v
from ansible_collections.netfleet.overlay.plugins.module_utils._model import ZERO_MAC, family
from ansible_collections.netfleet.overlay.plugins.module_utils._module import ModuleError
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl import namespace as nl

STATES = ("merged", "replaced", "overridden", "deleted", "gathered", "rendered")
_FDB_VERB = {ZERO_MAC: "append"}


@dataclass(frozen=True)
class TableSpec:
    """What differs between the two tables: field names, key, member, and how a human would type it."""

    name: str  # "fdb" or "neigh"
    key_field: str  # groups entries: mac (fdb) / ip (neigh)
    member_field: str  # the value under a key: dst (fdb) / mac (neigh)

    def additive(self, key: str) -> bool:
        return self.name == "fdb" and key == ZERO_MAC

    def entry(self, key: str, member: str) -> dict:
        return {self.key_field: key, self.member_field: member}

    def command_lines(self, action: str, pairs, dev: str, netns: str | None) -> list[str]:
        """The command line of each ``(key, member)`` pair for one action on one device, in one comprehension.

        Every word is shell-quoted by :mod:`._cmdline`; the words shared by all lines are quoted once.
        """
        q, dev = _cmdline.quote, _cmdline.quote(dev)
        if self.name == "fdb":
            start = _cmdline.tool("bridge", netns, "fdb")
            if action == "delete":
                return [f"{start} del {q(mac)} dev {dev} dst {q(dst)} self" for mac, dst in pairs]
            # the head-end flood list is appended to; a unicast MAC's one destination is replaced
            verb = _FDB_VERB.get
            return [
                f"{start} {verb(mac, 'replace')} {q(mac)} dev {dev} dst {q(dst)} self permanent" for mac, dst in pairs
            ]
        start = _cmdline.tool("ip", netns, "neigh")
        if action == "delete":
            return [f"{start} del {q(ip)} dev {dev}" for ip, _mac in pairs]
        return [f"{start} replace {q(ip)} lladdr {q(mac)} dev {dev} nud permanent" for ip, mac in pairs]


FDB = TableSpec("fdb", "mac", "dst")
NEIGH = TableSpec("neigh", "ip", "mac")
SPECS = {"fdb": FDB, "neigh": NEIGH}


# --- input ------------------------------------------------------------------------------------------------


def _fields(spec: TableSpec) -> tuple[v.Field, v.Field]:
    """The fields of one entry, as :func:`._validate.table_entries` checks them (fresh: each caches its texts)."""
    if spec.name == "fdb":
        return v.Field("mac", "mac_or_zero"), v.Field("dst", "ip")
    return v.Field("ip", "ip"), v.Field("mac", "unicast_mac")


def normalize_pairs(spec: TableSpec, entries, *, state: str, local: str | None = None) -> list[tuple]:
    """Validate and normalise user entries in one pass: ``(key, member)`` pairs, in the given order.

    With ``state=deleted`` the member may be omitted (delete the whole key: the member is ``None``); duplicate keys
    are rejected by name.  ``local`` is the vxlan device's own address: FDB destinations must be of its family.
    Every error names the entry's index, its field and its value (:func:`._validate.table_entries`).
    """
    key, member = _fields(spec)
    pairs = v.table_entries(
        entries,
        key,
        member,
        member_required="" if state == "deleted" else f" with state={state}",
        additive_key=ZERO_MAC if spec.name == "fdb" else None,
    )
    if spec.name == "fdb":
        check_families(pairs, local)
    return pairs


def normalize_entries(spec: TableSpec, entries, *, state: str, local: str | None = None) -> list[dict]:
    """:func:`normalize_pairs` as entry dicts (``{'mac': ..., 'dst': ...}``; a key-only entry's member is None)."""
    kf, mf = spec.key_field, spec.member_field
    return [{kf: k, mf: m} for k, m in normalize_pairs(spec, entries, state=state, local=local)]


def check_families(pairs: list[tuple], local: str | None) -> None:
    """Every FDB destination of ``(mac, dst)`` pairs (normalised) is of the family of the vxlan device's ``local``;
    the first one that is not fails, named by its index."""
    if not local:
        return
    v6 = family(local) == 6
    for i, (_mac, dst) in enumerate(pairs):
        if dst and (":" in dst) is not v6:
            check_dst_family(f"entries[{i}]", dst, local)


def check_dst_family(where: str, dst: str | None, local: str | None) -> None:
    """An FDB destination (normalised) is of the family of the vxlan device's own address ``local``."""
    if dst and local and family(dst) != family(local):
        raise v.InputError(
            f"{where}.dst: {dst} is IPv{family(dst)} but the vxlan device's local "
            f"address {local} is IPv{family(local)}; they must be the same family"
        )


# --- planning -----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _gc_paused():
    """The cyclic garbage collector paused meanwhile (left as it was).

    Reading and planning a 20k-entry table makes ~100k tuples and dicts, none of them in a reference cycle; the
    collector would walk the young ones every 700 allocations, and now and then every object of the process.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _groups(pairs) -> dict[str, list]:
    """``(key, member)`` pairs as ``{key: [members]}``."""
    groups: dict[str, list] = {}
    for key, member in pairs:
        if key in groups:
            groups[key].append(member)
        else:
            groups[key] = [member]
    return groups


def _settled(spec: TableSpec, state: str, want_pairs: list, cur_pairs: list) -> bool:
    """True when ``state`` needs no operation at all, decided with dict and set operations (the common re-run).

    Exactly when the general planner would plan nothing: every wanted key already holds exactly its wanted
    members (``merged``: at least them, for the additive key), and for ``overridden`` nothing else is there.
    Inputs the general planner treats specially (duplicate current rows, an exclusive key wanted twice) are left
    to it.  When this is True, ``cur_pairs`` holds each pair once, and for ``overridden`` ``want_pairs`` holds the
    same pairs.
    """
    # cheap rejections first (False only means "let the general planner decide")
    if len(want_pairs) > len(cur_pairs) or (state == "overridden" and len(want_pairs) != len(cur_pairs)):
        return False
    flood = ZERO_MAC if spec.name == "fdb" else None
    if state == "overridden":
        have, want = dict(cur_pairs), dict(want_pairs)
        if flood not in have and flood not in want:
            # every key is exclusive: the same pairs, each once, exactly when neither side repeats a key and the
            # two maps are equal (a third of the time of comparing sets of pairs: members are never hashed)
            return len(have) == len(cur_pairs) and len(want) == len(want_pairs) and have == want
    cur = set(cur_pairs)
    if len(cur) != len(cur_pairs):
        return False
    want = set(want_pairs)
    if state == "overridden" and want != cur:
        return False
    keys = list(map(itemgetter(0), want_pairs))
    exclusive_keys = set(keys)
    exclusive_keys.discard(flood)
    if len(exclusive_keys) != len(keys) - keys.count(flood):
        return False
    if state == "overridden":
        return True
    if state == "replaced":
        wanted_keys = exclusive_keys | ({flood} if flood in keys else set())
        return {p for p in cur if p[0] in wanted_keys} == want
    # merged
    return want <= cur and {p for p in cur if p[0] in exclusive_keys} == {p for p in want if p[0] != flood}


def _converge(spec: TableSpec, want: dict, have: dict, *, exact: bool) -> tuple[list, list]:
    """``(deletes, upserts)`` that bring every wanted key to its wanted members.

    ``exact`` also drops the members of an additive key that are not wanted.
    """
    deletes: list[tuple[str, str]] = []
    upserts: list[tuple[str, str]] = []
    fdb = spec.name == "fdb"  # a neighbour's replace overwrites; a second FDB dst must be deleted
    for key, members in want.items():
        cur = have.get(key)
        if fdb and key == ZERO_MAC:  # spec.additive(key)
            if cur is None:
                upserts.extend((key, m) for m in members)
                continue
            upserts.extend((key, m) for m in members if m not in cur)
            if exact:
                deletes.extend((key, m) for m in cur if m not in members)
            continue
        (target,) = members
        if cur is None:
            upserts.append((key, target))
            continue
        if len(cur) == 1 and cur[0] == target:
            continue
        # an exclusive key ends up with exactly one member, written with one replace, which the kernel applies in
        # place (a unicast MAC that moves to another VTEP, an address reused by another MAC: no moment without an
        # entry); only an FDB key appended to more than once has strays to delete first
        if fdb and len(cur) > 1:
            deletes.extend((key, m) for m in cur if m != target)
        upserts.append((key, target))
    return deletes, upserts


def _sorted_pairs(pairs) -> list:
    """``(key, member)`` pairs sorted by key, then member (``None`` first)."""
    pairs = list(pairs)
    try:
        pairs.sort()
    except TypeError:  # a None member next to a str one under the same key
        pairs.sort(key=lambda pair: (pair[0], pair[1] or ""))
    return pairs


def plan(
    spec: TableSpec,
    state: str,
    wanted: list[dict],
    current: list,
    *,
    dev: str,
    netns: str | None = None,
    tables: bool = True,
) -> dict:
    """Plan the change from ``current`` (the owned entries as ``(key, member)`` pairs, as :func:`read` returns
    them) to what ``state`` asks for; ``wanted`` are entries as :func:`normalize_entries` returns them.

    Returns ``{'ops', 'before', 'after', 'counts', 'commands', 'changed'}`` where ``ops`` lists
    ``{'action': 'delete'|'upsert', 'entry', 'command'}``, deletes first, and ``counts`` is ``{'before', 'after',
    'deleted', 'written'}`` (entries).  Linear in the number of entries (plus the sorts).  The entry dicts of
    ``ops``, ``before`` and ``after`` are read-only: they may be the same objects (when nothing changes, ``before``
    and ``after`` hold the same dicts; after a write to an empty table, ``after`` holds the ops' entries).
    ``tables=False`` leaves ``before`` and ``after`` out (a module that returns only the changes and the counts).
    """
    kf, mf = spec.key_field, spec.member_field
    return plan_pairs(spec, state, list(map(itemgetter(kf, mf), wanted)), current, dev=dev, netns=netns, tables=tables)


def plan_pairs(
    spec: TableSpec,
    state: str,
    want_pairs: list,
    current: list,
    *,
    dev: str,
    netns: str | None = None,
    tables: bool = True,
) -> dict:
    """:func:`plan` of wanted ``(key, member)`` pairs, as :func:`normalize_pairs` returns them."""
    if state not in STATES:
        raise v.InputError(f"state: {state!r} is not one of {', '.join(STATES)}")
    with _gc_paused():
        return _plan(spec, state, want_pairs, current, dev=dev, netns=netns, tables=tables)


def _plan(spec: TableSpec, state: str, want_pairs: list, current_pairs: list, *, dev: str, netns, tables) -> dict:
    kf, mf = spec.key_field, spec.member_field
    deletes: list[tuple[str, str]] = []
    upserts: list[tuple[str, str]] = []

    settled = state in ("merged", "replaced", "overridden") and _settled(spec, state, want_pairs, current_pairs)
    if settled:
        pass  # nothing to do: skip the per-key walk
    elif state == "rendered":
        deletes, upserts = _converge(spec, _groups(want_pairs), {}, exact=False)
    elif state == "merged":
        deletes, upserts = _converge(spec, _groups(want_pairs), _groups(current_pairs), exact=False)
    elif state in ("replaced", "overridden"):
        have, want = _groups(current_pairs), _groups(want_pairs)
        deletes, upserts = _converge(spec, want, have, exact=True)
        if state == "overridden":
            for key, members in have.items():
                if key not in want:
                    deletes.extend((key, m) for m in members)
    elif state == "deleted":
        have = _groups(current_pairs)
        if not want_pairs:
            for key, members in have.items():
                deletes.extend((key, m) for m in members)
        else:
            for key, members in _groups(want_pairs).items():
                cur = have.get(key, [])
                targets = cur if None in members else [m for m in members if m in cur]
                deletes.extend((key, m) for m in targets)
    # gathered: no operations

    # each pair once, sorted (dict.fromkeys keeps the order, which the sort can then use: planned pairs come
    # out in the order of the wanted entries, often already sorted)
    delete_pairs, upsert_pairs = sorted(dict.fromkeys(deletes)), sorted(dict.fromkeys(upserts))
    lines = spec.command_lines("delete", delete_pairs, dev, netns)
    ops = [
        {"action": "delete", "entry": {kf: k, mf: m}, "command": line}
        for (k, m), line in zip(delete_pairs, lines, strict=True)
    ]
    lines = spec.command_lines("upsert", upsert_pairs, dev, netns)
    upsert_ops = [
        {"action": "upsert", "entry": {kf: k, mf: m}, "command": line}
        for (k, m), line in zip(upsert_pairs, lines, strict=True)
    ]
    ops += upsert_ops

    # settled and overridden: want_pairs holds the current pairs, and often in order already (cheaper to sort)
    if settled and state == "overridden":
        before = want_pairs if not tables else _sorted_pairs(want_pairs)
    else:
        before = current_pairs if not tables else _sorted_pairs(current_pairs)
    current_set = None if settled else set(current_pairs)  # settled: each pair once (see _settled)
    if state == "rendered":  # as if the table were empty
        start = []
    elif current_set is None or len(current_set) == len(current_pairs):
        start = before
    else:
        start = current_set if not tables else _sorted_pairs(current_set)
    counts = {"before": len(before), "after": len(start), "deleted": len(delete_pairs), "written": len(upsert_pairs)}
    if not ops:
        if not tables:
            return {"ops": ops, "counts": counts, "commands": [], "changed": False}
        before_entries = [{kf: k, mf: m} for k, m in before]
        after_entries = list(before_entries) if start is before else [{kf: k, mf: m} for k, m in start]
    else:
        # deletes first, then upserts; an exclusive upsert replaces every member of its key
        gone = set(delete_pairs)
        flood = ZERO_MAC if spec.name == "fdb" else None
        replaced = set(map(itemgetter(0), upsert_pairs))
        replaced.discard(flood)
        kept = [pair for pair in start if pair not in gone and pair[0] not in replaced] if start else []
        counts["after"] = len(kept) + len(upsert_pairs)
        if not tables:
            return {"ops": ops, "counts": counts, "commands": [op["command"] for op in ops], "changed": True}
        before_entries = [{kf: k, mf: m} for k, m in before]
        if kept:
            after = _sorted_pairs(kept + upsert_pairs)  # two sorted runs, disjoint: a merge
            after_entries = [{kf: k, mf: m} for k, m in after]
        else:  # only what is written: the upserts' own entries, already in order
            after_entries = list(map(itemgetter("entry"), upsert_ops))
    return {
        "ops": ops,
        "counts": counts,
        "before": before_entries,
        # unchanged: the same entry dicts in a list of its own (20k allocations fewer on a 20k re-run)
        "after": after_entries,
        "commands": [op["command"] for op in ops],
        "changed": bool(ops),
    }


def render_lines(spec: TableSpec, entries: list[dict], dev: str) -> str:
    """Entries as the lines ``bridge fdb show`` / ``ip neigh show`` would print (for diff mode)."""
    lines = []
    for e in entries:
        if spec.name == "fdb":
            lines.append(f"{e['mac']} dev {dev} dst {e['dst']} self permanent")
        else:
            lines.append(f"{e['ip']} dev {dev} lladdr {e['mac']} PERMANENT")
    return "".join(line + "\n" for line in lines)


# --- kernel side ----------------------------------------------------------------------------------------------


class TableApplyError(ModuleError):
    """Some table writes failed (every entry was attempted); ``errors`` lists one message per failed entry."""

    def __init__(self, table: str, errors: list[str], commands: list[str]):
        super().__init__(
            f"{len(errors)} of the planned {table} changes failed: {errors[0]}", errors=errors, commands=commands
        )
        self.errors = errors


def read(ns, spec: TableSpec, index: int) -> list[tuple]:
    """The entries this collection owns on a device (permanent ones, never learned/dynamic ones) as
    ``(key, member)`` pairs, in the kernel's order: what :func:`plan` takes.  One kernel-filtered raw dump.
    """
    return ns.table_dump(spec.name, index, permanent_only=True)


def apply(ns, spec: TableSpec, index: int, ops: list[dict]) -> None:
    """Send the planned operations, deletes first.  The single place that writes table entries.

    Every entry is attempted, in batches of raw netlink requests (:meth:`Namespace.table_write_many`); failures
    are collected and raised together (:class:`TableApplyError`), each naming its entry.
    """
    errors = ns.table_write_many(spec.name, index, ops) if ops else []
    if errors:
        raise TableApplyError(spec.name, errors, [op["command"] for op in ops])


def reconcile(
    ns,
    spec: TableSpec,
    *,
    dev: str,
    state: str,
    wanted: list[dict] | None = None,
    check_mode: bool,
    want_pairs: list | None = None,
    tables: bool = True,
) -> dict:
    """Read, plan and (outside check mode) apply one device's table.  Returns the module result fields.

    The wanted entries are ``wanted`` (entry dicts) or ``want_pairs`` (``(key, member)`` pairs); ``tables``: see
    :func:`plan` (``gathered`` always has its table).
    """
    index = ns.link_index(dev)
    if index is None:
        raise v.InputError(f"dev: device {dev} not found in {ns.label}")
    if want_pairs is None:
        want_pairs = list(map(itemgetter(spec.key_field, spec.member_field), wanted or []))
    with _gc_paused():
        current = read(ns, spec, index)
        result = plan_pairs(
            spec, state, want_pairs, current, dev=dev, netns=ns.name, tables=tables or state == "gathered"
        )
        if state == "gathered":
            result["gathered"] = result["before"]
        if result["ops"] and not check_mode:
            apply(ns, spec, index, result["ops"])
    return result


# --- the work of the neigh and fdb modules -----------------------------------------------------------------------

INVOCATION_ENTRIES = 100  # a module's invocation echoes at most this many entries back


def _invocation(params: dict) -> dict:
    """What the result's ``invocation`` shows of the arguments: all of them, except a long ``entries`` (the
    controller has them; echoing 100,000 back would cost more than the run), which is summarised."""
    args = dict(params)
    entries = args.get("entries") or []
    if len(entries) > INVOCATION_ENTRIES:
        args["entries"] = f"{len(entries)} entries (not echoed back; see counts)"
    return {"module_args": args}


def converge(module, spec: TableSpec) -> dict:
    """What a table module does (its work for :func:`._module.run`): validate the entries, then lock the host,
    read, plan and apply (outside check mode); with ``state=rendered`` only plan, against an empty table.

    The result holds the counts and the changes (``changes``, ``commands``) always; the whole table before and
    after (``before``, ``after``) only in diff mode or with ``full_tables``.
    """
    p = module.params
    state, dev, netns = p["state"], p["dev"], p["netns"]
    v.interface(dev, "dev")
    if netns is not None:
        v.netns_name(netns, "netns")
    with _gc_paused():
        want_pairs = normalize_pairs(spec, p["entries"], state=state)
    if state == "rendered":
        commands = plan_pairs(spec, state, want_pairs, [], dev=dev, netns=netns, tables=False)["commands"]
        return {"changed": False, "rendered": commands, "commands": commands, "invocation": _invocation(p)}
    tables = bool(module._diff or p.get("full_tables"))
    with nl.Namespace(netns) as ns:
        link = ns.link(dev)
        if link is None:
            raise v.InputError(f"dev: device {dev} not found in {ns.label}")
        if spec.name == "fdb":  # an FDB destination is of the family of the vxlan device's own address
            check_families(want_pairs, (link.get("vxlan") or {}).get("local"))
        with _lock.host_lock():  # one writer at a time on the host, as overlay_host
            result = reconcile(
                ns, spec, dev=dev, state=state, want_pairs=want_pairs, check_mode=module.check_mode, tables=tables
            )
    ops = result["ops"]
    out = {
        "changed": result["changed"],
        "counts": result["counts"],
        "changes": {
            "deleted": [op["entry"] for op in ops if op["action"] == "delete"],
            "written": [op["entry"] for op in ops if op["action"] == "upsert"],
        },
        "commands": result["commands"],
        "invocation": _invocation(p),
    }
    if "gathered" in result:
        out["gathered"] = result["gathered"]
    if tables:
        out["before"], out["after"] = result["before"], result["after"]
    if module._diff:
        header = f"{spec.name} {dev} ({netns or 'host namespace'})"
        out["diff"] = {
            "before": render_lines(spec, result["before"], dev),
            "after": render_lines(spec, result["after"], dev),
            "before_header": header,
            "after_header": header,
        }
    return out
