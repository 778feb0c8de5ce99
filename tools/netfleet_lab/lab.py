# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The caller's side of the lab: :class:`Lab` builds, inspects, stops and removes the holders of one lab
directory, plugs them into the switch and writes the inventory; the helpers around it read /proc and enter
namespaces. Nothing here configures the caller's own namespaces.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from devenv import REPO, VENV_BIN

# The launcher: the holders run it (`python -I -S tools/netfleet-lab _holder NAME DIR`), messages name it.
SCRIPT = Path(__file__).resolve().parents[1] / "netfleet-lab"
DEFAULT_DIR = REPO / ".lab"
STATE_VERSION = 1
MAX_HOSTS = 1000  # a Linux bridge has at most 1024 ports
SWITCH = "sw"
CONTROLLER = "ctl"
SWITCH_ADDR = "198.18.0.1"
CONTROLLER_ADDR = "198.18.0.2"
PREFIX = 16
MTU = 1500
READY_TIMEOUT = 30.0
NS_FLAGS = ["--mount", "--uts", "--ipc", "--net", "--pid"]
SSHD = "/usr/sbin/sshd"
FORBIDDEN_DIR_PREFIXES = ("/etc", "/run", "/sys", "/proc", "/dev")


class LabError(Exception):
    """A failure with a message for the user (exit status 1)."""


def log(msg: str) -> None:
    print(msg, flush=True)


def host_addr(k: int) -> str:
    """Underlay address of host hK: 198.18.1.1 ... 198.18.1.254, then 198.18.2.1 ..."""
    return f"198.18.{1 + (k - 1) // 254}.{1 + (k - 1) % 254}"


def host_names(n: int) -> list[str]:
    return [f"h{k}" for k in range(1, n + 1)]


def node_mac(name: str) -> str:
    """A stable MAC for a node's eth0 (02:00 + its IPv4 address): like a real NIC, it survives a reboot, so the
    other hosts' underlay ARP caches stay right."""
    return "02:00:" + ":".join(f"{int(octet):02x}" for octet in node_addr(name).split("."))


def node_addr(name: str) -> str:
    if name == SWITCH:
        return SWITCH_ADDR
    if name == CONTROLLER:
        return CONTROLLER_ADDR
    return host_addr(int(name[1:]))


def read_cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0")[:-1]]


def proc_state(pid: int) -> str | None:
    """The one-letter state of pid, or None when it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def is_alive(pid: int) -> bool:
    return proc_state(pid) not in (None, "Z", "X")


def is_holder(pid: int | None, name: str, state_dir: Path) -> bool:
    """True when pid is this lab's holder for `name` (the unshare process or the inner PID 1)."""
    if not isinstance(pid, int) or pid <= 1:
        return False
    args = read_cmdline(pid)
    return len(args) >= 4 and args[-4].endswith("netfleet-lab") and args[-3:] == ["_holder", name, str(state_dir)]


def unrecorded_holders(state_dir: Path) -> list[int]:
    """Live processes that are holders of this lab (whatever their name), found by their cmdline."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            args = read_cmdline(int(entry))
            if len(args) >= 4 and args[-3] == "_holder" and args[-1] == str(state_dir) and is_alive(int(entry)):
                found.append(int(entry))
    return found


@functools.cache
def nstarget():
    """plugins/plugin_utils/_nstarget.py (standard library only), shared with the nsenter connection."""
    import importlib.util

    path = REPO / "plugins" / "plugin_utils" / "_nstarget.py"
    spec = importlib.util.spec_from_file_location("netfleet_lab_nstarget", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def kill_holders(pids: list[int], what: str) -> None:
    """SIGKILL holder processes (the caller has checked with :func:`is_holder` that they are) and wait until they
    are gone; the unshare processes, orphaned when `up` exited, are then reaped by init: wait (briefly) for that."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(is_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    left = [p for p in pids if is_alive(p)]
    if left:
        raise LabError(f"{what} still alive after SIGKILL: {left}")
    deadline = time.monotonic() + 5
    while any(proc_state(p) is not None for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)


def ns_id(pid: int | str, kind: str) -> tuple[int, int]:
    st = os.stat(f"/proc/{pid}/ns/{kind}")
    return st.st_dev, st.st_ino


def run(cmd: list[str], *, input_text: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, input=input_text, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise LabError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr.strip()}")
    return proc


def foreign_net(pid: int) -> int:
    """Refuse to configure anything in the caller's own network namespace."""
    if pid <= 1 or ns_id(pid, "net") == ns_id("self", "net"):
        raise LabError(f"refusing to touch pid {pid}: it is in this process's own network namespace")
    return pid


def nsenter_net(pid: int) -> list[str]:
    return ["nsenter", "--target", str(foreign_net(pid)), "--net", "--"]


def nsenter_all(pid: int) -> list[str]:
    return ["nsenter", "--target", str(foreign_net(pid)), *NS_FLAGS, "--"]


def wait_all(procs: list[tuple[str, subprocess.Popen]], what: str) -> None:
    errors = []
    for name, proc in procs:
        out, err = proc.communicate()
        if proc.returncode != 0:
            errors.append(f"{name}: {what} failed ({proc.returncode}): {(err or out or '').strip()}")
    if errors:
        raise LabError("\n".join(errors[:10]))


def yaml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid YAML double-quoted scalar


def venv_python() -> str:
    cand = VENV_BIN / "python"
    return str(cand) if cand.exists() else sys.executable


# --------------------------------------------------------------------------------------------
# The lab
# --------------------------------------------------------------------------------------------
class Lab:
    def __init__(self, state_dir: Path):
        self.dir = state_dir
        self.hosts_dir = state_dir / "hosts"
        self.ssh_dir = state_dir / "ssh"
        self.state_file = state_dir / "state.json"
        self.inventory = state_dir / "inventory.yml"
        self.state: dict = {}

    # ---- state -------------------------------------------------------------------------------
    def load(self) -> dict:
        try:
            self.state = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.state = {}
        return self.state

    def save(self) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, self.state_file)

    @contextlib.contextmanager
    def locked(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".lock", "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            yield

    def holder_pid(self, name: str) -> int | None:
        """The live holder of ``name``: its command line, and its start time when the lab recorded one."""
        rec = self.state.get("holders", {}).get(name, {})
        pid = rec.get("pid")
        if not (is_holder(pid, name, self.dir) and is_alive(pid)):
            return None
        if rec.get("record"):  # a lab started before records existed has none: its cmdline check stands alone
            ns = nstarget()
            try:
                start = ns.parse_record(rec["record"], name)["start"]
            except ns.TargetError:
                return None
            if ns.start_time(pid) != start:
                return None
        return pid

    def problems(self) -> list[str]:
        holders = self.state.get("holders", {})
        if self.state.get("status") != "up":
            return [f"state is {self.state.get('status', 'unknown')!r}"]
        return [
            f"{name} is stopped (`{SCRIPT.name} start {name}`)" if rec.get("stopped") else f"{name} is not running"
            for name, rec in holders.items()
            if self.holder_pid(name) is None
        ]

    # ---- up ----------------------------------------------------------------------------------
    def up(self, n: int, ssh: bool) -> int:
        if self.state_file.exists() or list(self.hosts_dir.glob("*.upid")):
            self.load()
            problems = self.problems() if self.state else ["state.json is missing or unreadable"]
            if problems:
                raise LabError(
                    f"the lab in {self.dir} is incomplete or broken ({'; '.join(problems[:3])}); "
                    f"run `{SCRIPT.name} down --dir {self.dir}` first"
                )
            if self.state.get("hosts") == n and bool(self.state.get("ssh")) == ssh:
                log(f"lab already up in {self.dir} with {n} hosts{' (ssh)' if ssh else ''}: nothing to do")
                return 0
            raise LabError(
                f"a lab with {self.state.get('hosts')} hosts (ssh={bool(self.state.get('ssh'))}) is already up in "
                f"{self.dir}; asked for {n} hosts (ssh={ssh}). Nothing changed. Run `{SCRIPT.name} down` first."
            )
        start = time.monotonic()
        try:
            self._build(n, ssh)
        except BaseException:
            log("up failed: tearing down what was built")
            with contextlib.suppress(Exception):
                self.down(quiet=True)
            raise
        log(
            f"lab up in {self.dir}: {n} hosts{' + ctl (ssh)' if ssh else ''} in {time.monotonic() - start:.2f} s\n"
            f"inventory: {self.inventory}"
        )
        return 0

    def _build(self, n: int, ssh: bool) -> None:
        for tool in ("unshare", "nsenter", "ip"):
            if shutil.which(tool) is None:
                raise LabError(f"{tool} not found in PATH (util-linux / iproute2 needed)")
        if ssh:
            ensure_sshd()
        names = host_names(n)
        nodes = [SWITCH, *names] + ([CONTROLLER] if ssh else [])
        self.hosts_dir.mkdir(parents=True, exist_ok=True)
        self.state = {
            "version": STATE_VERSION,
            "dir": str(self.dir),
            "status": "building",
            "hosts": n,
            "ssh": ssh,
            "holders": {},
        }
        self.save()
        etc_hosts = "".join(f"{node_addr(x)}\t{x}\n" for x in nodes)
        (self.hosts_dir / "etc-hosts").write_text(etc_hosts, encoding="utf-8")

        # 1. start every holder at once, then wait for their ready files
        self._spawn(nodes)
        holders = self.state["holders"]

        # 2. the underlay: br0 in the switch, one veth per node, created from inside the switch
        batch = [
            f"link add br0 mtu {MTU} type bridge stp_state 0",
            f"addr add {SWITCH_ADDR}/{PREFIX} dev br0",
            "link set br0 up",
        ]
        run([*nsenter_net(holders[SWITCH]["pid"]), "ip", "-batch", "-"], input_text="\n".join(batch) + "\n")
        self._plug(nodes[1:])

        # 3. optional sshd in every host
        if ssh:
            self._start_sshd(names)

        self.write_inventory(names, ssh)
        self.state["status"] = "up"
        self.state["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.save()

    def _spawn(self, nodes: list[str]) -> None:
        """Start the holders of ``nodes`` at once, wait until each is ready and record its pids."""
        procs: dict[str, subprocess.Popen] = {}
        for name in nodes:
            hdir = self.hosts_dir / name
            for sub in ("upper", "work"):
                (hdir / sub).mkdir(parents=True, exist_ok=True)
            cmd = [
                "unshare",
                "--net",
                "--mount",
                "--uts",
                "--ipc",
                "--pid",
                "--fork",
                "--kill-child",
                "--mount-proc",
                "--propagation",
                "private",
                sys.executable,
                "-I",
                "-S",
                str(SCRIPT),
                "_holder",
                name,
                str(self.dir),
            ]
            with open(self.hosts_dir / f"{name}.log", "ab") as logf:
                proc = subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True, cwd="/"
                )
            procs[name] = proc
            (self.hosts_dir / f"{name}.upid").write_text(f"{proc.pid}\n", encoding="utf-8")
            self.state["holders"][name] = {"unshare": proc.pid, "pid": None, "addr": node_addr(name)}
        self.save()

        pending = set(nodes)
        deadline = time.monotonic() + READY_TIMEOUT
        while pending:
            for name in list(pending):
                if (self.hosts_dir / name / "ready").exists():
                    pending.discard(name)
                elif procs[name].poll() is not None:
                    err = self.hosts_dir / f"{name}.err"
                    detail = err.read_text(encoding="utf-8").strip() if err.exists() else ""
                    raise LabError(f"holder {name} exited with {procs[name].returncode}: {detail}")
            if pending:
                if time.monotonic() > deadline:
                    raise LabError(f"holders not ready after {READY_TIMEOUT:.0f} s: {sorted(pending)[:5]}")
                time.sleep(0.01)

        for name, proc in procs.items():
            with open(f"/proc/{proc.pid}/task/{proc.pid}/children", encoding="utf-8") as f:
                children = f.read().split()
            if len(children) != 1 or not is_holder(int(children[0]), name, self.dir):
                raise LabError(f"cannot find the inner PID 1 of {name} (children of {proc.pid}: {children})")
            pid = int(children[0])
            # the pid with its start time and namespaces: a later reader can tell it from a process that got the
            # pid after this holder died (see plugins/plugin_utils/_nstarget.py)
            record = nstarget().record_of(pid)
            self.state["holders"][name]["pid"] = pid
            self.state["holders"][name]["record"] = record.strip()
            (self.hosts_dir / f"{name}.pid").write_text(record, encoding="utf-8")
        self.save()

    def _plug(self, names: list[str]) -> None:
        """Plug ``names`` into the switch (veth created from inside the switch) and configure their eth0."""
        holders = self.state["holders"]
        batch = []
        for name in names:
            port, target = f"v{name}", foreign_net(holders[name]["pid"])
            batch.append(
                f"link add {port} mtu {MTU} type veth peer name eth0 address {node_mac(name)} mtu {MTU} netns {target}"
            )
            batch.append(f"link set {port} master br0 up")
        run([*nsenter_net(holders[SWITCH]["pid"]), "ip", "-batch", "-"], input_text="\n".join(batch) + "\n")

        # every node configures its own eth0 (in parallel)
        jobs = []
        for name in names:
            cmds = [f"addr add {node_addr(name)}/{PREFIX} dev eth0", "link set eth0 up"]
            if name != CONTROLLER:
                cmds.append(f"route add default via {SWITCH_ADDR} dev eth0")
            proc = subprocess.Popen(
                [*nsenter_net(holders[name]["pid"]), "ip", "-batch", "-"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            proc.stdin.write("\n".join(cmds) + "\n")
            proc.stdin.close()
            proc.stdin = None
            jobs.append((name, proc))
        wait_all(jobs, "eth0 setup")

    def _start_sshd(self, names: list[str]) -> None:
        self.ssh_dir.mkdir(mode=0o700, exist_ok=True)
        key, hostkey = self.ssh_dir / "id_ed25519", self.ssh_dir / "ssh_host_ed25519_key"
        for path, comment in ((key, "netfleet-lab"), (hostkey, "netfleet-lab-host")):
            if not path.exists():
                run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
        shutil.copyfile(key.with_suffix(".pub"), self.ssh_dir / "authorized_keys")
        jobs = []
        for name in names:
            conf = self.ssh_dir / f"sshd_{name}.conf"
            conf.write_text(
                "\n".join(
                    [
                        f"# sshd for lab host {name} (netfleet-lab)",
                        f"ListenAddress {node_addr(name)}",
                        "Port 22",
                        f"HostKey {hostkey}",
                        f"PidFile {self.ssh_dir / f'sshd_{name}.pid'}",
                        f"AuthorizedKeysFile {self.ssh_dir / 'authorized_keys'}",
                        "PermitRootLogin prohibit-password",
                        "PasswordAuthentication no",
                        "KbdInteractiveAuthentication no",
                        "UsePAM no",
                        "StrictModes no",
                        "UseDNS no",
                        "PrintMotd no",
                        "Subsystem sftp internal-sftp",
                        "",
                    ]
                ),
                encoding="utf-8",
            )
            cmd = [*nsenter_all(self.state["holders"][name]["pid"]), SSHD, "-f", str(conf)]
            cmd += ["-E", str(self.ssh_dir / f"sshd_{name}.log")]
            jobs.append((name, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
        wait_all(jobs, "sshd start")

    def write_inventory(self, names: list[str], ssh: bool) -> None:
        lines = [
            f"# Written by tools/netfleet-lab up --hosts {len(names)}{' --ssh' if ssh else ''} --dir {self.dir}",
        ]
        if ssh:
            lines.append(f"# SSH mode: run ansible inside the controller: {SCRIPT} exec --dir {self.dir} ctl -- ...")
        lines += ["all:", "  children:", "    lab:", "      vars:"]
        if ssh:
            lab_vars = {
                "ansible_connection": "ssh",
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(self.ssh_dir / "id_ed25519"),
                "ansible_ssh_common_args": (
                    "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ControlMaster=no"
                ),
                # ssh takes the first value it sees and ssh_args come first: no shared ControlPath sockets
                "ansible_ssh_args": "-o ControlMaster=no -o ControlPath=none",
            }
        else:
            lab_vars = {"ansible_connection": "netfleet.overlay.nsenter"}
        lab_vars["ansible_python_interpreter"] = venv_python()
        lab_vars["ansible_pipelining"] = True
        for key, value in lab_vars.items():
            lines.append(f"        {key}: {yaml_str(value) if isinstance(value, str) else str(value).lower()}")
        lines.append("      hosts:")
        for name in names:
            lines.append(f"        {name}:")
            if ssh:
                lines.append(f"          ansible_host: {yaml_str(node_addr(name))}")
            else:
                lines.append(f"          ansible_nsenter_pidfile: {yaml_str(str(self.hosts_dir / f'{name}.pid'))}")
            lines.append(f"          overlay_vtep: {yaml_str(node_addr(name))}")
        tmp = self.inventory.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(tmp, self.inventory)

    # ---- down --------------------------------------------------------------------------------
    def recorded_pids(self) -> dict[str, set[int]]:
        """Every pid this lab ever recorded, from state.json and the pid files (after a crash)."""
        found: dict[str, set[int]] = {}
        for name, rec in self.state.get("holders", {}).items():
            for key in ("unshare", "pid"):
                if isinstance(rec.get(key), int):
                    found.setdefault(name, set()).add(rec[key])
        if self.hosts_dir.is_dir():
            for pidfile in [*self.hosts_dir.glob("*.upid"), *self.hosts_dir.glob("*.pid")]:
                with contextlib.suppress(OSError, ValueError):
                    found.setdefault(pidfile.stem, set()).add(int(pidfile.read_text(encoding="utf-8").split()[0]))
        return found

    def down(self, quiet: bool = False) -> int:
        if not self.dir.exists():
            if not quiet:
                log(f"no lab in {self.dir}: nothing to do")
            return 0
        self.load()
        killed, skipped = [], []
        for name, pids in sorted(self.recorded_pids().items()):  # verify everything before killing anything
            for pid in sorted(pids):
                if is_holder(pid, name, self.dir):
                    killed.append(pid)
                elif is_alive(pid):
                    skipped.append(f"{name}:{pid}")
        kill_holders(killed, "holders")
        # Our mounts all live in the holders' private mount namespaces; a mount under DIR in this
        # namespace would not be ours, so never delete through one.
        with open("/proc/self/mounts", encoding="utf-8") as f:
            ours = [ln.split()[1] for ln in f if ln.split()[1].startswith(str(self.dir) + "/")]
        if ours:
            raise LabError(f"refusing to remove {self.dir}: something is mounted under it: {ours[:3]}")
        for sub in (self.hosts_dir, self.ssh_dir):
            if sub.exists():
                shutil.rmtree(sub)
        for f in (self.state_file, self.inventory, self.state_file.with_suffix(".tmp"), self.dir / ".lock"):
            with contextlib.suppress(FileNotFoundError):
                f.unlink()
        with contextlib.suppress(OSError):
            self.dir.rmdir()  # only when empty: never delete what is not ours
        # A holder that `up` started but had no time to record (up was killed) notices that its
        # directory is gone and exits within a second: wait for that (look only, never kill).
        deadline = time.monotonic() + 5
        while (stray := unrecorded_holders(self.dir)) and time.monotonic() < deadline:
            time.sleep(0.05)
        if stray and not quiet:
            log(f"warning: unrecorded holders still exiting: {stray[:10]}")
        if not quiet:
            msg = f"lab in {self.dir} removed ({len(killed)} holder processes killed)"
            if skipped:
                msg += f"; ignored stale pids that are not lab holders: {', '.join(skipped[:10])}"
            log(msg)
        return 0

    # ---- stop / start / reboot: one host goes away and comes back ----------------------------------
    def _one_host(self, name: str) -> dict:
        self.load()
        holders = self.state.get("holders", {})
        if self.state.get("status") != "up":
            raise LabError(f"no lab up in {self.dir} (state {self.state.get('status', 'missing')!r})")
        if name not in holders or name in (SWITCH, CONTROLLER):
            known = ", ".join(h for h in holders if h not in (SWITCH, CONTROLLER)) or "none"
            raise LabError(f"no host {name!r} in the lab in {self.dir} (known: {known})")
        if self.holder_pid(SWITCH) is None:
            raise LabError(f"the switch of the lab in {self.dir} is not running; run `{SCRIPT.name} down` first")
        return holders[name]

    def stop(self, name: str) -> int:
        """Power a host off: kill its holder, so everything in it (netns, links, /run) is gone."""
        rec = self._one_host(name)
        if rec.get("stopped"):
            log(f"{name} is already stopped")
            return 0
        pids = [p for p in (rec.get("unshare"), rec.get("pid")) if is_holder(p, name, self.dir)]
        # no pidfile any more: Ansible's nsenter connection then reports the host unreachable, and a
        # recycled pid can never be entered by mistake
        for stale in ("pid", "upid"):
            with contextlib.suppress(FileNotFoundError):
                (self.hosts_dir / f"{name}.{stale}").unlink()
        kill_holders(pids, f"{name}: holder")
        rec.update(unshare=None, pid=None, record=None, stopped=True)
        self.save()
        for leftover in ("ready",):
            with contextlib.suppress(FileNotFoundError):
                (self.hosts_dir / name / leftover).unlink()
        # the host's netns goes away asynchronously; its switch port goes with it
        self._wait_port_gone(name)
        log(f"{name} stopped")
        return 0

    def _wait_port_gone(self, name: str) -> None:
        switch = self.state["holders"][SWITCH]["pid"]
        deadline = time.monotonic() + 15
        while run([*nsenter_net(switch), "ip", "link", "show", f"v{name}"], check=False).returncode == 0:
            if time.monotonic() > deadline:
                raise LabError(f"{name}: switch port v{name} still there 15 s after the host stopped")
            time.sleep(0.05)

    def start(self, name: str) -> int:
        """Boot a stopped host again: an empty host with the same name, address, route (and sshd)."""
        self._one_host(name)
        if self.holder_pid(name) is not None:
            log(f"{name} is already running")
            return 0
        self._wait_port_gone(name)
        with contextlib.suppress(FileNotFoundError):
            (self.hosts_dir / f"{name}.err").unlink()
        started = time.monotonic()
        self._spawn([name])
        self._plug([name])
        if self.state.get("ssh"):
            self._start_sshd([name])
        log(f"{name} started in {time.monotonic() - started:.2f} s (empty, address {node_addr(name)})")
        return 0

    def reboot(self, name: str) -> int:
        self.stop(name)
        return self.start(name)

    # ---- exec / list -------------------------------------------------------------------------
    def exec(self, host: str, cmd: list[str]) -> int:
        self.load()
        if host not in self.state.get("holders", {}):
            known = ", ".join(self.state.get("holders", {})) or "none"
            raise LabError(f"no host {host!r} in the lab in {self.dir} (known: {known})")
        rec = self.state["holders"][host]
        pid = rec.get("pid")
        if rec.get("stopped"):
            raise LabError(f"host {host} is stopped; run `{SCRIPT.name} start --dir {self.dir} {host}`")
        if not (is_holder(pid, host, self.dir) and is_alive(pid)):
            raise LabError(f"host {host} is not running; run `{SCRIPT.name} down` and `up` again")
        if not cmd:
            cmd = [os.environ.get("SHELL", "/bin/sh")]
        # cd inside the host, so the path is looked up in its own mount namespace
        cwd = os.getcwd()
        shim = 'cd -- "$0" 2>/dev/null || cd /; exec "$@"'
        ns = nstarget()
        try:
            # the start time and namespaces recorded at `up`/`start` (a lab from before records: refused, restart it)
            record = ns.parse_record(rec.get("record") or str(pid), f"the record of {host} in {self.state_file}")
            target = ns.Target(pid, f"host {host} (pid {pid})", record)
        except ns.TargetError as exc:
            raise LabError(str(exc)) from None
        for fd in target.fds.values():  # nsenter (this very process after exec) enters them: no pid lookup again
            os.set_inheritable(fd, True)
        argv = ["nsenter", *target.nsenter_options("/proc/self/fd"), "--", "/bin/sh", "-c", shim, cwd, *cmd]
        sys.stdout.flush()
        os.execvp(argv[0], argv)
        return 127  # not reached

    def list(self) -> int:
        self.load()
        holders = self.state.get("holders", {})
        if not holders:
            log(f"no lab in {self.dir}")
            return 0
        mode = "ssh" if self.state.get("ssh") else "nsenter"
        log(f"lab {self.dir}: {self.state.get('hosts')} hosts, mode {mode}, status {self.state.get('status')}")
        log(f"{'NAME':<6} {'PID':>8} {'UNSHARE':>8} {'STATE':<7} ADDRESS")
        for name, rec in holders.items():
            alive = "alive" if self.holder_pid(name) else ("stopped" if rec.get("stopped") else "dead")
            addr = f"{rec.get('addr')}/{PREFIX}"
            log(f"{name:<6} {rec.get('pid') or '-':>8} {rec.get('unshare') or '-':>8} {alive:<7} {addr}")
        return 0


def ensure_sshd() -> None:
    if not os.path.exists(SSHD):
        log(f"{SSHD} missing: installing openssh-server with apt-get")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "openssh-server"]
        if subprocess.run(install, env=env, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, check=False)
            subprocess.run(install, env=env, check=False)
        if not os.path.exists(SSHD):
            raise LabError("cannot install openssh-server (apt-get install openssh-server)")
    if shutil.which("ssh-keygen") is None:
        raise LabError("ssh-keygen not found (apt-get install openssh-client)")
