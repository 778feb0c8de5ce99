# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of ``netfleet.overlay.overlay_host``: run the module, then print its one-line summary.

A changed host gets one readable line without ``-v`` (``h2: +1 endpoint (web3), fdb +3 -2``); an unchanged host
prints nothing. Printing here costs a no-change run nothing: no extra task, no skipped-task line per host.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()


class ActionModule(ActionBase):
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # tmp no longer has any effect
        result.update(self._execute_module(task_vars=task_vars))
        self._remove_tmp_path(self._connection._shell.tmpdir)
        summary = result.get("summary")
        if result.get("changed") and summary:
            host = (task_vars or {}).get("inventory_hostname") or self._task.delegate_to or "?"
            display.display(f"{host}: {summary}{' (check mode)' if self._play_context.check_mode else ''}")
        return result
