# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: the table reconciler behind the neigh and fdb modules.  May change without notice.
"""Reconcile a device's static table (ARP/ND or vxlan FDB) against the wanted entries, by key.

Planning is pure: :func:`plan` takes wanted and current entries and returns the operations, the predicted
``after`` and the equivalent ``ip``/``bridge`` command lines.  :func:`apply` is the one place that sends table
changes to the kernel, so a faster transport can replace it without touching the planner.

Entries are grouped by their key (the MAC for FDB, the IP for neighbours).  An *exclusive* group holds one
member (a unicast MAC has one destination, an IP one MAC); the FDB flood group ``00:00:00:00:00:00`` is
*additive*, one member per destination (the head-end replication list).
"""

from __future__ import annotations

from dataclasses import dataclass

from ansible_collections.netfleet.overlay.plugins.module_utils import _validate as v

STATES = ("merged", "replaced", "overridden", "deleted", "gathered", "rendered")


@dataclass(frozen=True)
class TableSpec:
    """What differs between the two tables: field names, key, member, and how a human would type it."""

    name: str  # "fdb" or "neigh"
    key_field: str  # groups entries: mac (fdb) / ip (neigh)
    member_field: str  # the value under a key: dst (fdb) / mac (neigh)

    def additive(self, key: str) -> bool:
        return self.name == "fdb" and key == v.ZERO_MAC

    def entry(self, key: str, member: str) -> dict:
        return {self.key_field: key, self.member_field: member}

    def command(self, action: str, entry: dict, dev: str, netns: str | None) -> str:
        if self.name == "fdb":
            ns = f"-n {netns} " if netns else ""
            mac, dst = entry["mac"], entry["dst"]
            if action == "delete":
                return f"bridge {ns}fdb del {mac} dev {dev} dst {dst} self"
            verb = "append" if mac == v.ZERO_MAC else "replace"
            return f"bridge {ns}fdb {verb} {mac} dev {dev} dst {dst} self permanent"
        ns = f"-n {netns} " if netns else ""
        if action == "delete":
            return f"ip {ns}neigh del {entry['ip']} dev {dev}"
        return f"ip {ns}neigh replace {entry['ip']} lladdr {entry['mac']} dev {dev} nud permanent"

    def sort_key(self, entry: dict):
        return (entry[self.key_field], entry.get(self.member_field) or "")


FDB = TableSpec("fdb", "mac", "dst")
NEIGH = TableSpec("neigh", "ip", "mac")
SPECS = {"fdb": FDB, "neigh": NEIGH}


# --- input ------------------------------------------------------------------------------------------------


def normalize_entries(spec: TableSpec, entries, *, state: str, local: str | None = None) -> list[dict]:
    """Validate and normalise user entries; duplicate keys are rejected by name.

    With ``state=deleted`` the member may be omitted (delete the whole key).  ``local`` is the vxlan device's
    own address: FDB destinations must be of the same IP family.
    """
    out: list[dict] = []
    seen: dict[tuple, int] = {}
    partial = state == "deleted"
    for i, raw in enumerate(entries or []):
        where = f"entries[{i}]"
        if not isinstance(raw, dict):
            raise v.InputError(f"{where}: expected a dict with {spec.key_field} and {spec.member_field}, got {raw!r}")
        unknown = set(raw) - {spec.key_field, spec.member_field}
        if unknown:
            raise v.InputError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        if raw.get(spec.key_field) in (None, ""):
            raise v.InputError(f"{where}.{spec.key_field} is required")
        member = raw.get(spec.member_field)
        if member in (None, "") and not partial:
            raise v.InputError(f"{where}.{spec.member_field} is required with state={state}")
        if spec.name == "fdb":
            key = v.mac(raw["mac"], f"{where}.mac", unicast=True, allow_zero=True)
            member = v.ip(member, f"{where}.dst") if member not in (None, "") else None
            if member and local and v.family(member) != v.family(local):
                raise v.InputError(
                    f"{where}.dst: {member} is IPv{v.family(member)} but the vxlan device's local "
                    f"address {local} is IPv{v.family(local)}; they must be the same family"
                )
        else:
            key = v.ip(raw["ip"], f"{where}.ip")
            member = v.mac(member, f"{where}.mac", unicast=True) if member not in (None, "") else None
        dup_key = (key, member) if spec.additive(key) else (key,)
        if dup_key in seen:
            shown = " ".join(part for part in dup_key if part)  # a key-only flood entry has no member
            raise v.InputError(f"{where}: duplicate key {shown} (already given as entries[{seen[dup_key]}])")
        seen[dup_key] = i
        out.append(spec.entry(key, member))
    return out


# --- planning -----------------------------------------------------------------------------------------------


def _groups(spec: TableSpec, entries) -> dict[str, list]:
    groups: dict[str, list] = {}
    for e in entries:
        groups.setdefault(e[spec.key_field], []).append(e[spec.member_field])
    return groups


def plan(
    spec: TableSpec, state: str, wanted: list[dict], current: list[dict], *, dev: str, netns: str | None = None
) -> dict:
    """Plan the change from ``current`` (owned entries only) to what ``state`` asks for.

    Returns ``{'ops', 'before', 'after', 'commands', 'changed'}`` where ``ops`` lists
    ``{'action': 'delete'|'upsert', 'entry', 'command'}``, deletes first.
    """
    if state not in STATES:
        raise v.InputError(f"state: {state!r} is not one of {', '.join(STATES)}")
    have = _groups(spec, current)
    want = _groups(spec, wanted)
    deletes: list[tuple[str, str]] = []
    upserts: list[tuple[str, str]] = []

    def converge(key: str, members: list, exact: bool) -> None:
        cur = have.get(key, [])
        if spec.additive(key):
            upserts.extend((key, m) for m in members if m not in cur)
            if exact:
                deletes.extend((key, m) for m in cur if m not in members)
            return
        (target,) = members
        # an exclusive key ends up with exactly one member: drop strays, then write the wanted one
        deletes.extend((key, m) for m in cur if m != target and spec.name == "fdb")
        if cur != [target]:
            upserts.append((key, target))

    if state == "rendered":
        have = {}
        for key, members in want.items():
            converge(key, members, exact=False)
    elif state == "merged":
        for key, members in want.items():
            converge(key, members, exact=False)
    elif state in ("replaced", "overridden"):
        for key, members in want.items():
            converge(key, members, exact=True)
        if state == "overridden":
            for key, members in have.items():
                if key not in want:
                    deletes.extend((key, m) for m in members)
    elif state == "deleted":
        if not wanted:
            for key, members in have.items():
                deletes.extend((key, m) for m in members)
        else:
            for key, members in want.items():
                cur = have.get(key, [])
                targets = cur if None in members else [m for m in members if m in cur]
                deletes.extend((key, m) for m in targets)
    # gathered: no operations

    ops = [{"action": "delete", "entry": spec.entry(k, m)} for k, m in sorted(set(deletes))]
    ops += [{"action": "upsert", "entry": spec.entry(k, m)} for k, m in sorted(set(upserts))]
    for op in ops:
        op["command"] = spec.command(op["action"], op["entry"], dev, netns)

    after_set = {(e[spec.key_field], e[spec.member_field]) for e in current} if state != "rendered" else set()
    for op in ops:
        key, member = op["entry"][spec.key_field], op["entry"][spec.member_field]
        if op["action"] == "delete":
            after_set.discard((key, member))
        else:
            if not spec.additive(key):
                after_set = {pair for pair in after_set if pair[0] != key}
            after_set.add((key, member))
    before = sorted((spec.entry(e[spec.key_field], e[spec.member_field]) for e in current), key=spec.sort_key)
    after = sorted((spec.entry(k, m) for k, m in after_set), key=spec.sort_key)
    return {
        "ops": ops,
        "before": before,
        "after": after,
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


class TableApplyError(Exception):
    """Some table writes failed; ``errors`` lists one message per failed entry."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors
        self.result: dict | None = None


def read_owned(ns, spec: TableSpec, index: int) -> list[dict]:
    """The entries this collection owns on a device: permanent ones (never learned/dynamic ones)."""
    rows = ns.fdb_dump(index) if spec.name == "fdb" else ns.neigh_dump(index)
    return [spec.entry(r[spec.key_field], r[spec.member_field]) for r in rows if r["permanent"]]


def apply(ns, spec: TableSpec, index: int, ops: list[dict]) -> None:
    """Send the planned operations, deletes first.  The single place that writes table entries.

    Every entry is attempted; failures are collected and raised together, each naming its entry.
    """
    errors = []
    for op in ops:
        try:
            ns.table_write(spec.name, index, op)
        except Exception as exc:  # each entry's failure is reported by name
            errors.append(str(exc))
    if errors:
        raise TableApplyError(errors)


def reconcile(ns, spec: TableSpec, *, dev: str, state: str, wanted: list[dict], check_mode: bool) -> dict:
    """Read, plan and (outside check mode) apply one device's table.  Returns the module result fields."""
    index = ns.link_index(dev)
    if index is None:
        raise v.InputError(f"dev: device {dev} not found in {ns.label}")
    current = read_owned(ns, spec, index)
    result = plan(spec, state, wanted, current, dev=dev, netns=ns.name)
    if state == "gathered":
        result["gathered"] = result["before"]
    if result["ops"] and not check_mode:
        try:
            apply(ns, spec, index, result["ops"])
        except TableApplyError as exc:
            exc.result = result
            raise
    return result


# --- the module front-end shared by neigh and fdb ---------------------------------------------------------------


def run_module(module, spec: TableSpec) -> None:
    """Everything a table module does: validate, read, plan, apply (outside check mode), report."""
    from ansible_collections.netfleet.overlay.plugins.module_utils import _netlink as nl

    p = module.params
    state = p["state"]
    try:
        v.interface(p["dev"], "dev")
        if p["netns"] is not None:
            v.netns_name(p["netns"], "netns")
        if state == "rendered":
            wanted = normalize_entries(spec, p["entries"], state=state)
            result = plan(spec, state, wanted, [], dev=p["dev"], netns=p["netns"])
            module.exit_json(changed=False, rendered=result["commands"], commands=result["commands"])
        # validate entries before touching the kernel; the vxlan's own address is checked once we can read it
        wanted = normalize_entries(spec, p["entries"], state=state)
    except v.InputError as exc:
        module.fail_json(msg=str(exc))

    nl.require_pyroute2(module)
    try:
        with nl.Namespace(p["netns"]) as ns:
            link = ns.link(p["dev"])
            if link is None:
                raise v.InputError(f"dev: device {p['dev']} not found in {ns.label}")
            local = (link.get("vxlan") or {}).get("local")
            if spec.name == "fdb" and local:
                wanted = normalize_entries(spec, p["entries"], state=state, local=local)
            result = reconcile(ns, spec, dev=p["dev"], state=state, wanted=wanted, check_mode=module.check_mode)
    except v.InputError as exc:
        module.fail_json(msg=str(exc))
    except nl.NetlinkOpError as exc:
        module.fail_json(msg=str(exc))
    except TableApplyError as exc:
        module.fail_json(
            msg=f"{len(exc.errors)} of the planned {spec.name} changes failed: {exc.errors[0]}",
            errors=exc.errors,
            commands=exc.result["commands"] if exc.result else [],
        )

    out = {k: result[k] for k in ("changed", "before", "after", "commands")}
    if "gathered" in result:
        out["gathered"] = result["gathered"]
    if module._diff:
        out["diff"] = {
            "before": render_lines(spec, result["before"], p["dev"]),
            "after": render_lines(spec, result["after"], p["dev"]),
            "before_header": f"{spec.name} {p['dev']} ({p['netns'] or 'host namespace'})",
            "after_header": f"{spec.name} {p['dev']} ({p['netns'] or 'host namespace'})",
        }
    module.exit_json(**out)
