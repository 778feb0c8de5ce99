# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of ``netfleet.overlay.overlay_plan``: the whole fleet's overlay, computed once on the controller.

It reads ``hostvars`` in Python (``plugin_utils.fleet_records``), computes the fleet plan (``compute_plan`` of
``plugin_utils.peer_tables``) and returns it packed, as ``plan``. Nothing runs on a host. The plan is linear in
the endpoints; each host expands its own part with the ``netfleet.overlay.host_tables`` filter, so no host ever
carries the whole fleet's tables.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Mapping

from ansible import context
from ansible.plugins.action import ActionBase

from ansible_collections.netfleet.overlay.plugins.plugin_utils.fleet_records import (
    PREFIX,
    WIREGUARD_KEY_VAR,
    FleetRecordsError,
    fleet_records,
)
from ansible_collections.netfleet.overlay.plugins.plugin_utils.peer_tables import (
    DEFAULT_PURGE_LIMIT,
    PeerTableError,
    compute_plan,
    kept_warnings,
    pack_plan,
    plan_summary,
)

ARGUMENT_SPEC = {
    "networks": {"type": "list", "elements": "dict", "required": True},
    "fleet_group": {"type": "str", "default": "all"},
    "active_hosts": {"type": "list", "elements": "str"},
    "allow_purge": {"type": "bool", "default": False},
    "purge_limit": {"type": "int", "default": DEFAULT_PURGE_LIMIT},
    "forget_hosts": {"type": "list", "elements": "str", "default": []},
    # raw: compute_plan checks them, naming the variable and the value
    "wireguard_port": {"type": "raw"},
    "wireguard_subnet": {"type": "raw"},
    "wireguard_rotate": {"type": "raw", "default": False},
}
NOTHING_CHANGED = "No host was changed."
# What fleet_records reads of each host's variables (templated where needed); the names of the other overlay_*
# variables are only checked, so their values are passed on raw.
READ = frozenset(("overlay_state", "overlay_vtep", "overlay_endpoints"))
FACTS = "ansible_facts"
_MARKERS = ("{{", "{%", "{#")


def _maybe_template(value) -> bool:
    """Whether ``value`` holds a string that Jinja could change (a quick scan of the raw data)."""
    if isinstance(value, str):
        return any(marker in value for marker in _MARKERS)
    if isinstance(value, Mapping):
        return any(_maybe_template(key) or _maybe_template(item) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return any(_maybe_template(item) for item in value)
    return False


class _FleetVars(Mapping):
    """hostname -> the variables fleet_records reads, as cheaply as Ansible allows.

    ``hostvars[host]`` builds all of a host's variables and templates each one on access, which is most of the
    time a fleet of thousands of hosts takes. ``hostvars.raw_get`` builds them once without templating; only a
    value that could hold a template is then read through ``hostvars``, templated. Facts are data, never
    templates. Every other ``overlay_*`` variable comes along untemplated, for the check of its name.
    """

    def __init__(self, hostvars):
        self._hostvars = hostvars

    def __getitem__(self, host):
        raw = self._hostvars.raw_get(host)
        if not isinstance(raw, Mapping):  # not in the inventory: fleet_records names the host
            raise KeyError(host)
        found = {}
        for key in raw:
            if key.startswith(PREFIX):
                value = raw[key]
                if key in READ and _maybe_template(value):
                    value = self._hostvars[host][key]
                found[key] = value
        if FACTS in raw:
            found[FACTS] = raw[FACTS]
        if WIREGUARD_KEY_VAR in raw:  # a registered result: data, never a template
            found[WIREGUARD_KEY_VAR] = raw[WIREGUARD_KEY_VAR]
        return found

    def __iter__(self):
        return iter(self._hostvars)

    def __len__(self):
        return len(self._hostvars)


def _outside_message(outside: list[str], group: str) -> str:
    others = f", and neither are {', '.join(outside[1:])}" if len(outside) > 1 else ""
    return (
        f"{outside[0]} is not in the inventory group '{group}' (overlay_fleet_group){others}; that group's hosts"
        " form the fleet: add the hosts of the play to it or set overlay_fleet_group to a group that holds every"
        f" host of the play. {NOTHING_CHANGED}"
    )


def _removed_text(removed) -> str:
    """What the run removes, by host and name, for ``--diff`` (the hosts' own diffs show it as table edits)."""
    lines = ["overlay_plan: this run removes"]
    for host, gone in removed.items():
        for kind in ("endpoints", "networks"):
            for name in gone[kind]:
                lines.append(
                    f"-  {host}: {kind[:-1]} {name}{' (overlay_state: absent)' if gone['state'] == 'absent' else ''}"
                )
    return "\n".join(lines) + "\n"


# A key rotation switches the hosts one after another, at instants the plan fixes, SWITCH_GAP apart in name order
# (the whole sequence at most SWITCH_SPREAD long). Between two hosts' switches, the packets that the later one still
# sends with the old session are lost, so the gap is short; but it is never zero: two hosts that switch at the same
# moment both start a handshake with each other, the handshakes cross, and neither completes until WireGuard retries
# 5 s later. The first instant leaves time for every host of the run to get there: a start-up margin, plus one
# module start per batch of forks.
SWITCH_MARGIN = 2.0  # seconds
SWITCH_PER_BATCH = 0.5  # seconds per batch of hosts that the forks start together
SWITCH_GAP = 0.05  # seconds between two hosts' switches
SWITCH_SPREAD = 5.0  # seconds, the most from the first host's switch to the last one's


def _set_switch_instants(fleet_plan: dict, hosts: int) -> None:
    """Give each host that rotates its key in this plan its ``switch_at`` (epoch seconds)."""
    wireguard = fleet_plan.get("wireguard")
    rotating = sorted(name for name, entry in (wireguard or {}).get("hosts", {}).items() if entry["rotate"])
    if not rotating:
        return
    forks = max(1, int(context.CLIARGS.get("forks") or 5))
    first = time.time() + SWITCH_MARGIN + SWITCH_PER_BATCH * -(-max(hosts, 1) // forks)
    gap = min(SWITCH_GAP, SWITCH_SPREAD / len(rotating))
    for rank, name in enumerate(rotating):
        wireguard["hosts"][name]["switch_at"] = round(first + rank * gap, 3)


class ActionModule(ActionBase):
    """Compute the fleet plan from every host's variables and facts."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        group = args["fleet_group"]
        active = args["active_hosts"]
        if active is None:
            active = list(task_vars.get("ansible_play_batch") or [])
        fleet = (task_vars.get("groups") or {}).get(group)
        members = set(fleet or ())
        outside = [host for host in active if host not in members]
        if outside:
            result.update(failed=True, changed=False, msg=_outside_message(outside, group))
            return result
        # The computation allocates a few objects per endpoint and frees nothing until it ends, in a worker
        # that holds the whole inventory: the cyclic GC would rescan all of it again and again (measured at
        # 2000 hosts: 0.81 s with it, 0.63 s without).
        collecting = gc.isenabled()
        gc.disable()
        try:
            records = fleet_records(_FleetVars(task_vars["hostvars"]), list(fleet), active)
            fleet_plan = compute_plan(
                args["networks"],
                records,
                allow_purge=args["allow_purge"],
                purge_limit=args["purge_limit"],
                forget_hosts=args["forget_hosts"],
                wireguard_port=args["wireguard_port"],
                wireguard_subnet=args["wireguard_subnet"],
                wireguard_rotate=args["wireguard_rotate"],
            )
            _set_switch_instants(fleet_plan, len(active))
            result.update(changed=False, plan=pack_plan(fleet_plan), summary=plan_summary(fleet_plan))
        except (FleetRecordsError, PeerTableError) as exc:
            # A failed result, not an exception: Ansible prints an exception's message twice (an error banner with
            # its origin, then the result), and a chained one a third time.
            result.update(failed=True, changed=False, msg=f"{str(exc).rstrip('.')}. {NOTHING_CHANGED}")
            return result
        finally:
            if collecting:
                gc.enable()
        result["removed"] = fleet_plan["removed"]
        result["kept"] = fleet_plan["kept"]
        warnings = [*kept_warnings(fleet_plan["kept"], group), *fleet_plan["warnings"]]
        if warnings:
            result["warnings"] = [*result.get("warnings", []), *warnings]
        if self._task.diff and fleet_plan["removed"]:
            # callbacks show a diff only for a changed result: the hosts are about to change, as the diff says
            result.update(changed=True, diff={"prepared": _removed_text(fleet_plan["removed"])})
        return result
