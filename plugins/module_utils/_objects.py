# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: the base class of the kernel-object modules (netns, bridge, vxlan, veth).  May change without notice.
"""One transaction shape for every object module.

A subclass says how to validate its parameters, how to read the object (a canonical dict, or None when absent),
what the object should look like afterwards, and which steps get it there.  The base class owns check mode
(``after`` is the prediction), ``commands``, the errors of a failed step and namespace handles;
:func:`._module.run` reports them.
"""

from __future__ import annotations

from contextlib import ExitStack

from ansible_collections.netfleet.overlay.plugins.module_utils import _cmdline, _lock
from ansible_collections.netfleet.overlay.plugins.module_utils import _validate as v
from ansible_collections.netfleet.overlay.plugins.module_utils._module import ModuleError
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl import namespace as nl


class Step:
    """One change: the equivalent command line for humans and the function that performs it."""

    __slots__ = ("command", "run")

    def __init__(self, command: str, run):
        self.command = command
        self.run = run


ip_cmd = _cmdline.ip  # ``ip [-n NETNS] WORDS...``, every word shell-quoted


class Unmade:
    """A namespace that a check-mode run would create: it reads as empty, so the planners predict every object in
    it as they predict any missing object."""

    def __init__(self, name: str):
        self.name = name
        self.label = f"netns {name}"

    def link(self, ifname: str) -> None:
        return None

    def link_index(self, ifname: str) -> None:
        return None

    def links(self) -> list:
        return []

    def addresses(self, index: int) -> list:
        return []


class Handles:
    """Netlink handles on namespaces, opened on first use and closed together (``with Handles() as h``).

    In check mode nothing is created, so the objects that the run would create are noted (:meth:`foresee`): a
    namespace then reads as empty (:class:`Unmade`), and a link counts as there for the objects that need it
    (:meth:`foreseen`, a bridge that a port joins).
    """

    def __init__(self):
        self._stack = ExitStack()
        self._open: dict = {}
        self._foreseen: set = set()  # (netns, None) for a namespace, (netns, ifname) for a link

    def __call__(self, name: str | None) -> nl.Namespace | Unmade:
        if name not in self._open:
            if (name, None) in self._foreseen:
                return Unmade(name)
            self._open[name] = self._stack.enter_context(nl.Namespace(name))
        return self._open[name]

    def foresee(self, netns: str | None, ifname: str | None = None) -> None:
        """Check mode: the run would create the namespace ``netns`` (``ifname`` None) or the link ``ifname`` in it."""
        self._foreseen.add((netns, ifname))

    def foreseen(self, netns: str | None, ifname: str) -> bool:
        return (netns, ifname) in self._foreseen

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


class ObjectError(ModuleError):
    """A change failed part-way; carries the planned and the completed commands."""

    def __init__(self, msg: str, commands: list[str], done: list[str]):
        super().__init__(msg, commands=commands, commands_done=done)
        self.done = done  # what the host converge counts as applied


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

    def _validate_link(self) -> dict:
        """Check the link's ``name`` and ``netns``; returns ``self.params`` for the rest of the validation."""
        p = self.params
        v.interface(p["name"], "name")
        if p["netns"] is not None:
            v.netns_name(p["netns"], "netns")
        return p

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

    def _check_master(self) -> None:
        """Raise :class:`InputError` when the bridge ``master`` is neither in ``netns`` nor about to be made there."""
        p = self.params
        ns = self.handles(p["netns"])
        if p["master"] and ns.link_index(p["master"]) is None and not self.handles.foreseen(p["netns"], p["master"]):
            raise v.InputError(f"master: bridge {p['master']} not found in {ns.label}")

    def foresee(self, before: dict | None, after: dict | None) -> None:
        """Check mode: note what this object's steps would create (a link ``name`` in ``netns``)."""
        if before is None and after is not None:
            self.handles.foresee(self.params["netns"], self.params["name"])

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
            if steps:
                self.foresee(before, predicted)
        result = {"changed": bool(steps), "before": before or {}, "after": after or {}, "commands": commands}
        result.update(self.result)
        return result


def converge(module, cls) -> dict:
    """What a single-object module does (its work for :func:`._module.run`): validate, then lock the host, read,
    plan and (outside check mode) apply.

    The host lock (:mod:`._lock`) makes the read-plan-write one step against every other writer on the host: an
    ``overlay_host`` converge or another module run.
    """
    with Handles() as handles:
        obj = cls(module.params, handles, module.check_mode)
        obj.validate()
        obj.validated = True
        with _lock.host_lock():
            return obj.execute()
