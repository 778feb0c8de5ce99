# Copyright (c) 2026, netfleet.overlay maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: nsenter
author: netfleet.overlay maintainers (@netfleet)
short_description: Run tasks inside the namespaces of a process on the controller
description:
  - Runs commands with C(nsenter --mount=FD --uts=FD --ipc=FD --net=FD --pid=FD -- /bin/sh -c CMD), so a task
    executes inside the mount, UTS, IPC, network and PID namespaces of the target process. This is how
    Ansible reaches the simulated hosts of the C(tools/netfleet-lab) lab, where every host is a set of
    namespaces held open by one process.
  - The target is given by exactly one of O(pid) or O(pidfile). The plugin never falls back to PID 1.
  - The target's namespace files are opened once per connection and checked through those descriptors; C(nsenter)
    enters the descriptors, never C(/proc/PID/ns) again, so a pid that dies and is reused afterwards cannot
    redirect a task.
  - A target is refused, with the reason, when its user namespace is not the controller's (an unprivileged
    user's sandbox such as C(unshare -Urmn)) or when any of its mount, UTS, IPC, PID or network namespaces is the
    controller's own (a process that is not a separate host, for example a service with only a private network
    namespace).
  - Files are streamed through C(nsenter) (C(cat > dest) and C(cat src)), so they land in the target's mount
    namespace and never go through a path shared with the controller.
  - Supports pipelining.
version_added: 0.1.0
options:
  pid:
    description:
      - PID (as seen from the controller) of a process whose namespaces the tasks enter.
      - A bare PID carries no start time, so nothing tells the process from one that gets the PID later; prefer
        O(pidfile).
      - Mutually exclusive with O(pidfile); one of them is required.
    type: int
    vars:
      - name: ansible_nsenter_pid
  pidfile:
    description:
      - Path on the controller of a holder record, for example C(.lab/hosts/h1.pid) written by
        C(tools/netfleet-lab up) - the PID, its start time (field 22 of C(/proc/PID/stat)) and its namespace
        inodes, on one line.
      - A process whose start time or namespaces differ from the record is refused (the host died and its PID
        was reused). A pidfile that holds only a PID (written by an older lab) is refused too, with a message to
        restart the lab.
      - The file is read again for every task, so a rebuilt lab is picked up without changing the inventory.
      - Mutually exclusive with O(pid); one of them is required.
    type: path
    vars:
      - name: ansible_nsenter_pidfile
  become_success_timeout:
    description:
      - Number of seconds to wait for become to succeed when enabled.
      - The default will be used if the configured value is less than 1.
    type: int
    default: 10
    vars:
      - name: ansible_nsenter_become_success_timeout
  become_strip_preamble:
    description:
      - Strip internal become output preceding command execution. Disable for additional diagnostics.
    type: bool
    default: true
    vars:
      - name: ansible_nsenter_become_strip_preamble
extends_documentation_fragment:
  - connection_pipelining
notes:
  - The controller must run as root, in the PID namespace where the PID (or pidfile) is meaningful.
  - The host is reported unreachable, with the reason, when the pidfile is missing, unreadable or incomplete,
    when the process is not running, when it is not the recorded one, and when it is refused (see above).
  - The remote user is ignored; tasks run as the user that runs Ansible, and C(become) works, as with the
    P(ansible.builtin.local#connection) connection.
  - Needs C(nsenter) from util-linux on the controller and C(/bin/sh) and C(cat) in the target.
seealso:
  - name: The lab (docs/lab.md)
    description: How the simulated fleet is built and entered.
    link: https://example.invalid/netfleet/overlay/docs/lab.md
"""

EXAMPLES = r"""
# inventory.yml (written by tools/netfleet-lab up)
# all:
#   children:
#     lab:
#       vars:
#         ansible_connection: netfleet.overlay.nsenter
#       hosts:
#         h1:
#           ansible_nsenter_pidfile: /work/main/.lab/hosts/h1.pid

- name: Show the hostname of every lab host
  hosts: lab
  gather_facts: false
  tasks:
    - ansible.builtin.command: hostname
"""

import os
import re
import shlex
import shutil
import subprocess

from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text
from ansible.plugins.connection.local import Connection as LocalConnection
from ansible.utils.display import Display

from ansible_collections.netfleet.overlay.plugins.plugin_utils import _nstarget

display = Display()

ENTER_FAILED = re.compile(rb"nsenter: (cannot open /proc/\d+/|reassociate to namespace|failed to execute /bin/sh)")


class Connection(LocalConnection):
    """Run commands inside the namespaces of a process found by pid or pidfile."""

    transport = "netfleet.overlay.nsenter"
    has_pipelining = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._target: _nstarget.Target | None = None
        self._nsenter: str | None = None

    # ---- target ----------------------------------------------------------------------------
    def _read_target(self) -> tuple[int, str, dict | None]:
        """The pid, how it was given (for messages) and the holder record of a pidfile (None for a bare pid)."""
        pid, pidfile = self.get_option("pid"), self.get_option("pidfile")
        if pid is not None and pidfile:
            raise AnsibleConnectionFailure(
                "nsenter: set only one of ansible_nsenter_pid and ansible_nsenter_pidfile, not both"
            )
        if pidfile:
            try:
                with open(pidfile, encoding="ascii") as f:
                    text = f.read()
            except FileNotFoundError:
                raise AnsibleConnectionFailure(f"nsenter: pidfile {pidfile} does not exist (is the lab up?)") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise AnsibleConnectionFailure(f"nsenter: cannot read pidfile {pidfile}: {exc}") from None
            try:
                record = _nstarget.parse_record(text, f"pidfile {pidfile}")
            except _nstarget.TargetError as exc:
                raise AnsibleConnectionFailure(f"nsenter: {exc}") from None
            return record["pid"], f"pid {record['pid']} from pidfile {pidfile}", record
        if pid is None:
            raise AnsibleConnectionFailure(
                "nsenter: no target: set ansible_nsenter_pidfile or ansible_nsenter_pid (there is no default)"
            )
        return int(pid), f"pid {pid}", None

    def _resolve_target(self) -> _nstarget.Target:
        pid, what, record = self._read_target()
        if pid <= 1:
            raise AnsibleConnectionFailure(f"nsenter: invalid {what}")
        try:
            return _nstarget.Target(pid, what, record)
        except _nstarget.TargetError as exc:
            raise AnsibleConnectionFailure(f"nsenter: {exc}") from None

    def _check_target(self) -> None:
        """The target may die between commands: make sure the process that was checked still runs."""
        if not self._target.alive():
            raise AnsibleConnectionFailure(f"nsenter: target pid {self._target.pid} is gone")

    def _connect(self) -> Connection:
        if not self._connected:
            self._nsenter = shutil.which("nsenter")
            if self._nsenter is None:
                raise AnsibleConnectionFailure("nsenter: the nsenter command (util-linux) is not installed")
            self._target = self._resolve_target()
            self._play_context.remote_user = self.default_user
            display.vvv(
                f"ESTABLISH NSENTER CONNECTION TO PID {self._target.pid} FOR USER: {self.default_user}",
                host=self._play_context.remote_addr,
            )
            self._connected = True
        return self

    def _argv(self, cmd: str) -> list[str]:
        # the namespaces this process holds open, through its own /proc entry (the child does not inherit the fds)
        entered = self._target.nsenter_options(f"/proc/{os.getpid()}/fd")
        return [self._nsenter, *entered, "--", "/bin/sh", "-c", cmd]

    @staticmethod
    def _entered(rc: int, stderr: bytes) -> bool:
        """False when nsenter itself failed to enter the target (rather than the command failing)."""
        return rc == 0 or ENTER_FAILED.match(stderr) is None

    # ---- the connection API ------------------------------------------------------------------
    def exec_command(self, cmd: str, in_data: bytes | None = None, sudoable: bool = True) -> tuple[int, bytes, bytes]:
        self._connect()
        self._check_target()
        wrapped = "exec " + shlex.join(self._argv(to_text(cmd)))
        rc, stdout, stderr = super().exec_command(wrapped, in_data=in_data, sudoable=sudoable)
        if not self._entered(rc, stderr):
            raise AnsibleConnectionFailure(f"nsenter: cannot enter pid {self._target.pid}: {to_text(stderr).strip()}")
        return rc, stdout, stderr

    def put_file(self, in_path: str, out_path: str) -> None:
        self._connect()
        self._check_target()
        display.vvv(f"PUT {in_path} TO {out_path}", host=self._play_context.remote_addr)
        b_in = to_bytes(in_path, errors="surrogate_or_strict")
        if not os.path.exists(b_in):
            raise AnsibleFileNotFound(f"file or module does not exist: {to_native(in_path)}")
        argv = self._argv(f"cat > {shlex.quote(to_text(out_path))}")
        try:
            with open(b_in, "rb") as src:
                proc = subprocess.run(argv, stdin=src, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        except OSError as exc:
            raise AnsibleError(f"failed to transfer {in_path!r} to {out_path!r}: {exc}") from exc
        if not self._entered(proc.returncode, proc.stderr):
            raise AnsibleConnectionFailure(f"nsenter: cannot enter pid {self._target.pid}: {to_text(proc.stderr)}")
        if proc.returncode != 0:
            raise AnsibleError(f"failed to transfer file to {out_path!r}: {to_text(proc.stderr).strip()}")

    def fetch_file(self, in_path: str, out_path: str) -> None:
        self._connect()
        self._check_target()
        display.vvv(f"FETCH {in_path} TO {out_path}", host=self._play_context.remote_addr)
        b_out = to_bytes(out_path, errors="surrogate_or_strict")
        argv = self._argv(f"cat -- {shlex.quote(to_text(in_path))}")
        try:
            with open(b_out, "wb") as dst:
                proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=dst, stderr=subprocess.PIPE, check=False)
        except OSError as exc:
            raise AnsibleError(f"failed to fetch {in_path!r} to {out_path!r}: {exc}") from exc
        if proc.returncode != 0:
            os.unlink(b_out)
            if not self._entered(proc.returncode, proc.stderr):
                raise AnsibleConnectionFailure(f"nsenter: cannot enter pid {self._target.pid}: {to_text(proc.stderr)}")
            raise AnsibleFileNotFound(f"failed to fetch {in_path!r}: {to_text(proc.stderr).strip()}")

    def close(self) -> None:
        if self._target is not None:
            self._target.close()
            self._target = None
        self._connected = False
