# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: the one front-end of every module of the collection.  May change without notice.
"""How every module ends: its work's result fields, or one failure per collection error.

A module declares its arguments (``AnsibleModule``) and hands its work to :func:`run`, which checks what the
work needs (pyroute2), runs it and turns every error of the collection into ``fail_json``: ``msg``, and the
result fields that the error carries (:class:`ModuleError.details`: ``commands``, ``commands_done``, ``errors``,
``changed``, ``not_done``, ``summary``).
"""

from __future__ import annotations

from ansible_collections.netfleet.overlay.plugins.module_utils import _statedir
from ansible_collections.netfleet.overlay.plugins.module_utils import _validate as v
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl import namespace as nl


class ModuleError(Exception):
    """An error that fails the module; ``details`` are the result fields it adds to ``msg``.

    ``warnings`` among them are shown as warnings, as those of a successful run.
    """

    def __init__(self, msg: str, **details):
        super().__init__(msg)
        self.details = details


def run(module, work, *args, pyroute2: bool = True, failed: dict | None = None) -> None:
    """Exit ``module`` with ``work(module, *args)``'s result fields, or fail it with the error that stopped it.

    ``pyroute2``: the work writes to the kernel, so without pyroute2 the module fails (with Ansible's standard
    message) before the work starts.  ``failed``: the result fields that every failure of this module reports
    unless the error says otherwise (``overlay_host``: nothing changed, no command done).  In diff mode, a result
    with ``before`` and ``after`` and no ``diff`` of its own shows them as the diff.
    """
    if pyroute2:
        nl.require_pyroute2(module)
    try:
        result = work(module, *args)
    except (v.InputError, nl.NetlinkOpError, _statedir.StateDirError, ModuleError) as exc:
        details = dict(failed or {})
        details.update(getattr(exc, "details", {}))
        for warning in details.pop("warnings", ()):
            module.warn(warning)
        module.fail_json(msg=str(exc), **details)
    for warning in result.pop("warnings", ()):
        module.warn(warning)
    if module._diff and "diff" not in result and "before" in result and "after" in result:
        result["diff"] = {"before": result["before"], "after": result["after"]}
    module.exit_json(**result)
