# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: the base class of the kernel-object modules (netns, bridge, vxlan, veth).  May change without notice.
"""One transaction shape for every object module.

A subclass says how to validate its parameters, how to read the object (a canonical dict, or None when absent),
what the object should look like afterwards, and which steps get it there.  The base class owns check mode
(``after`` is the prediction), diff mode, ``commands``, error reporting and namespace handles.
"""

from __future__ import annotations

from contextlib import ExitStack

from ansible_collections.netfleet.overlay.plugins.module_utils import _netlink as nl
from ansible_collections.netfleet.overlay.plugins.module_utils import _validate as v


class Step:
    """One change: the equivalent command line for humans and the function that performs it."""

    __slots__ = ("command", "run")

    def __init__(self, command: str, run):
        self.command = command
        self.run = run


def ip_cmd(netns: str | None, rest: str) -> str:
    return f"ip -n {netns} {rest}" if netns else f"ip {rest}"


class ObjectModule:
    """Subclasses implement :meth:`validate`, :meth:`read`, :meth:`predict` and :meth:`steps`."""

    def __init__(self, module):
        self.module = module
        self.params = dict(module.params)
        self.result: dict = {}
        self._stack = ExitStack()
        self._handles: dict = {}

    # -- helpers for subclasses ----------------------------------------------------------------------------

    def ns(self, name: str | None) -> nl.Namespace:
        """A cached netlink handle on a namespace (None = where the module runs); closed at the end."""
        if name not in self._handles:
            self._handles[name] = self._stack.enter_context(nl.Namespace(name))
        return self._handles[name]

    def forget(self, name: str | None) -> None:
        """Drop a cached handle (after its namespace was removed)."""
        handle = self._handles.pop(name, None)
        if handle is not None:
            handle.close()

    # -- the contract ------------------------------------------------------------------------------------------

    def validate(self) -> None:
        """Normalise ``self.params``; raise :class:`InputError` naming the field and the value."""

    def read(self) -> dict | None:
        raise NotImplementedError

    def predict(self, before: dict | None) -> dict | None:
        """The canonical state after a successful run (what check mode returns as ``after``)."""
        raise NotImplementedError

    def steps(self, before: dict | None, after: dict | None) -> list[Step]:
        raise NotImplementedError

    # -- the transaction ---------------------------------------------------------------------------------------

    def run(self) -> None:
        module = self.module
        try:
            self.validate()
        except v.InputError as exc:
            module.fail_json(msg=str(exc))
        nl.require_pyroute2(module)
        done: list[str] = []
        try:
            with self._stack:
                before = self.read()
                predicted = self.predict(before)
                plan = self.steps(before, predicted)
                if plan and not module.check_mode:
                    for step in plan:
                        step.run()
                        done.append(step.command)
                    after = self.read()
                else:
                    after = predicted if plan else before
        except (nl.NetlinkOpError, v.InputError) as exc:
            module.fail_json(
                msg=str(exc), commands=[s.command for s in plan] if "plan" in locals() else [], commands_done=done
            )
        result = {
            "changed": bool(plan),
            "before": before or {},
            "after": after or {},
            "commands": [s.command for s in plan],
        }
        result.update(self.result)
        if module._diff:
            result["diff"] = {"before": before or {}, "after": after or {}}
        module.exit_json(**result)
