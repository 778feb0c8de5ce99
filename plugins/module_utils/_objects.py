# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: the base class of the kernel-object modules (netns, bridge, vxlan, veth).  May change without notice.
"""One transaction shape for every object module.

A subclass says how to validate its parameters, how to read the object (a canonical dict, or None when absent),
what the object should look like afterwards, and which steps get it there.  The base class owns check mode
(``after`` is the prediction), diff mode, ``commands``, error reporting and namespace handles.
"""

from __future__ import annotations

from contextlib import ExitStack

from ansible_collections.netfleet.overlay.plugins.module_utils import _cmdline, _lock
from ansible_collections.netfleet.overlay.plugins.module_utils import _netlink as nl
from ansible_collections.netfleet.overlay.plugins.module_utils import _validate as v


class Step:
    """One change: the equivalent command line for humans and the function that performs it."""

    __slots__ = ("command", "run")

    def __init__(self, command: str, run):
        self.command = command
        self.run = run


ip_cmd = _cmdline.ip  # ``ip [-n NETNS] WORDS...``, every word shell-quoted


class Handles:
    """Netlink handles on namespaces, opened on first use and closed together (``with Handles() as h``)."""

    def __init__(self):
        self._stack = ExitStack()
        self._open: dict = {}

    def __call__(self, name: str | None) -> nl.Namespace:
        if name not in self._open:
            self._open[name] = self._stack.enter_context(nl.Namespace(name))
        return self._open[name]

    def forget(self, name: str | None) -> None:
        """Drop a handle (after its namespace was removed)."""
        handle = self._open.pop(name, None)
        if handle is not None:
            handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._stack.close()
        self._open.clear()


class ObjectError(Exception):
    """A change failed part-way; carries the planned and the completed commands."""

    def __init__(self, msg: str, commands: list[str], done: list[str]):
        super().__init__(msg)
        self.commands = commands
        self.done = done


class KernelObject:
    """Subclasses implement :meth:`validate`, :meth:`read`, :meth:`predict` and :meth:`steps`."""

    def __init__(self, params: dict, handles: Handles, check_mode: bool = False):
        self.params = dict(params)
        self.handles = handles  # opens a namespace by name (Handles), not a namespace
        self.check_mode = check_mode
        self.result: dict = {}
        self.validated = False

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

    # -- shared by the link objects (params ``name`` and ``netns``) -------------------------------------------

    def _own_link(self, kind: str, noun: str, plain: str | None = "plain") -> dict | None:
        """The link ``name`` in ``netns``, or None when absent.  Raise :class:`InputError` when it is another kind.

        ``noun`` is what the module manages in the message ("not a bridge"); ``plain`` names a device without a
        kind (the bridge module has always said ``None`` there).
        """
        name = self.params["name"]
        ns = self.handles(self.params["netns"])
        link = ns.link(name)
        if link is not None and link["kind"] != kind:
            raise v.InputError(
                f"name: {name} in {ns.label} is a {link['kind'] or plain} device, not {noun}; "
                "remove it or choose another name"
            )
        return link

    def _delete_step(self) -> Step:
        """``ip link del`` of the link ``name`` in ``netns``."""
        name, netns = self.params["name"], self.params["netns"]
        ns = self.handles(netns)
        return Step(ip_cmd(netns, "link", "del", name), lambda: ns.link_del(name, ns.link_index(name)))

    # -- the transaction ---------------------------------------------------------------------------------------

    def execute(self) -> dict:
        """Read, plan and (outside check mode) apply.  Returns the result fields.

        Raises :class:`InputError` (nothing changed) or :class:`ObjectError` (a step failed).
        """
        if not self.validated:
            self.validate()
            self.validated = True
        before = self.read()
        predicted = self.predict(before)
        steps = self.steps(before, predicted)
        commands = [s.command for s in steps]
        done: list[str] = []
        if steps and not self.check_mode:
            try:
                for step in steps:
                    step.run()
                    done.append(step.command)
                after = self.read()
            except nl.NetlinkOpError as exc:
                raise ObjectError(str(exc), commands, done) from exc
        else:
            after = predicted if steps else before
        result = {"changed": bool(steps), "before": before or {}, "after": after or {}, "commands": commands}
        result.update(self.result)
        return result


def run_module(module, cls) -> None:
    """The whole life of a single-object module: validate, require pyroute2, lock the host, execute, report.

    The host lock (:mod:`._lock`) makes the read-plan-write one step against every other writer on the host: an
    ``overlay_host`` converge or another module run.
    """
    obj = None
    try:
        with Handles() as handles:
            obj = cls(module.params, handles, module.check_mode)
            obj.validate()
            obj.validated = True
            nl.require_pyroute2(module)
            with _lock.host_lock():
                result = obj.execute()
    except (v.InputError, _lock.LockTimeout) as exc:
        module.fail_json(msg=str(exc))
    except nl.NetlinkOpError as exc:
        module.fail_json(msg=str(exc))
    except ObjectError as exc:
        module.fail_json(msg=str(exc), commands=exc.commands, commands_done=exc.done)
    if module._diff:
        result["diff"] = {"before": result["before"], "after": result["after"]}
    module.exit_json(**result)
