# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: the DNS server of each dns network on a host, and the endpoints' resolv.conf.  May change without notice.
"""Names on a ``dns`` network: one dnsmasq per network and host, in the network's overlay netns ``ovl-<vni>``.

Each server listens only on the network's gateway address (on ``br0``) and answers only from its hosts file, which
holds exactly the plan's ``names`` of that network (``<endpoint>`` and ``<endpoint>.<network>``): no upstream
servers, no ``/etc/hosts``, no ``resolv.conf``, no DHCP, and ``NXDOMAIN`` for every other name, so the names of
another network never resolve. A names change rewrites the hosts file atomically and sends the server ``SIGHUP``,
which re-reads it without dropping a query; only a changed config (the gateway address) restarts it.

dnsmasq drops root after it starts (to ``nobody``) and re-reads the hosts file as that user, so its files cannot
live in the 0700 state directory (:mod:`._statedir`): they live in its sibling :func:`dns_dir`
(``/run/netfleet-overlay-dns``, root's, mode 0755, files 0644). What only root reads stays in the state directory:
the pid file and the log of a server this module started itself.

Supervision. Where systemd is PID 1 (``/run/systemd/system`` exists), the template unit :data:`UNIT`
runs each server (instance: the VNI) with ``NetworkNamespacePath=``, ``Restart=on-failure`` and ``ExecReload=``
(``SIGHUP``); it is started, never enabled, as the netns and the config in ``/run`` are gone after a boot until the
next run makes them again. Elsewhere (the lab) the module starts dnsmasq itself, in the foreground of a new session
inside the netns, and records its pid and start time; every run checks that this pid is still our dnsmasq in that
netns (:func:`server_problem`) and starts it again when it is not. Nothing is ever killed by name.

``/etc/netns/<endpoint>/resolv.conf`` (which ``ip netns exec`` mounts over ``/etc/resolv.conf``) points each
endpoint of a dns network at its gateway, for namespaces the collection made (never an attached one). Every file
written here starts with :data:`MARK`; only marked files are ever replaced or removed.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shutil
import signal
import stat
import struct
import subprocess
import time

from ansible_collections.netfleet.overlay.plugins.module_utils import _statedir, _supervise
from ansible_collections.netfleet.overlay.plugins.module_utils._model import netns_path, overlay_netns
from ansible_collections.netfleet.overlay.plugins.module_utils._module import ModuleError

MARK = "# netfleet.overlay:"  # the first line of every file this module writes
UNIT = "netfleet-overlay-dns@.service"
UNIT_DIR = "/etc/systemd/system"
SYSTEMD_RUNNING = "/run/systemd/system"  # exists where systemd is PID 1 (sd_booted)
ETC_NETNS = "/etc/netns"
RESOLV = "resolv.conf"
DIR_MADE = "dir=made"  # in a resolv.conf's mark: the collection also made its directory
READY_TIMEOUT = 5.0  # seconds a started server has to bind the gateway address
STOP_TIMEOUT = 5.0


class DnsError(ModuleError):
    """A DNS server could not be started, reloaded or stopped, or a file of ours is not what we wrote."""


def binary() -> str | None:
    """Path of ``dnsmasq`` (Debian's dnsmasq-base), also looked for in the sbin directories, with links resolved (the
    same path whatever ``PATH`` a run has: it is in the command line a server is recognised by); None when missing."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])
    found = shutil.which("dnsmasq", path=path)
    return os.path.realpath(found) if found else None


def dns_dir(state_dir: str = _statedir.STATE_DIR) -> str:
    """The directory of the servers' configs and hosts files: the state directory's world-readable sibling."""
    return state_dir.rstrip("/") + "-dns"


def instance(vni: int) -> str:
    return f"netfleet-overlay-dns@{vni}.service"


# --- what the files say ----------------------------------------------------------------------------------------


def argv(dnsmasq: str, conf: str) -> list[str]:
    """The server's command line (also what :func:`server_problem` expects to find)."""
    return [dnsmasq, "--keep-in-foreground", f"--conf-file={conf}"]


def config_text(net: dict, hosts: str) -> str:
    """dnsmasq's config for one network: the gateway address, the hosts file, and nothing else."""
    return "\n".join(
        (
            f"{MARK} the DNS server of network {net['name']} (vni {net['vni']}) in {overlay_netns(net['vni'])}",
            "# It answers from the hosts file alone: no upstream servers, /etc/hosts, resolv.conf or DHCP.",
            f"listen-address={net['gateway']['address']}",
            "bind-dynamic",  # binds the address when it appears, so a br0 made again does not need a restart
            "port=53",
            "no-resolv",
            "no-poll",
            "no-hosts",
            "local=/#/",  # every name is local: NXDOMAIN for what the hosts file lacks, never forwarded
            f"addn-hosts={hosts}",
            "user=nobody",
            "pid-file=",  # no pid file of its own: the supervisor knows the pid
            "log-facility=-",  # stderr: the journal, or the log file in the state directory
            "",
        )
    )


def hosts_text(net: dict) -> str:
    """The hosts file: one line per address with its names, sorted, so equal names give equal text."""
    by_address: dict = {}
    for name, address in net["names"].items():
        by_address.setdefault(ipaddress.ip_address(address), []).append(name)
    lines = [f"{MARK} the names of network {net['name']} (vni {net['vni']})"]
    for address in sorted(by_address, key=lambda a: (a.version, a)):
        lines.append(" ".join([address.compressed, *sorted(by_address[address])]))
    return "\n".join(lines) + "\n"


def unit_text(dnsmasq: str, directory: str) -> str:
    """The template unit: instance ``%i`` is the VNI, run in ``/run/netns/ovl-%i``; started, never enabled."""
    conf = os.path.join(directory, "%i.conf")
    return "\n".join(
        (
            f"{MARK} the DNS server of one overlay network (the instance is its VNI). Written by overlay_host.",
            "# Started by each run, never enabled: its netns and config live in /run and a run makes them again.",
            "[Unit]",
            "Description=netfleet.overlay DNS server of the overlay network with VNI %i",
            "Documentation=man:dnsmasq(8)",
            f"ConditionPathExists={netns_path(overlay_netns('%i'))}",
            "",
            "[Service]",
            "Type=simple",
            f"NetworkNamespacePath={netns_path(overlay_netns('%i'))}",
            "ExecStart=" + " ".join(argv(dnsmasq, conf)),
            "ExecReload=/bin/kill -HUP $MAINPID",
            "Restart=on-failure",
            "RestartSec=1",
            "NoNewPrivileges=yes",
            "",
        )
    )


def resolv_text(endpoint: str, net: dict, dir_made: bool) -> str:
    """An endpoint's resolv.conf: its network's gateway as the only name server.

    No search domain: the server answers ``<endpoint>`` and ``<endpoint>.<network>`` as they are written, so a
    search list would only add a second query for every name that does not exist.
    """
    mark = f"{MARK} endpoint={endpoint} network={net['name']}" + (f" {DIR_MADE}" if dir_made else "")
    comment = "# The network's DNS server (dnsmasq on its gateway); removed with the endpoint."
    return f"{mark}\n{comment}\nnameserver {net['gateway']['address']}\n"


def _marked(text: str | None) -> bool:
    return text is not None and text.startswith(MARK)


# --- files -----------------------------------------------------------------------------------------------------


def _open_dir(path: str, create: bool) -> int | None:
    """A descriptor of ``path`` (made 0755 when ``create``; None when it is missing): a real directory that only
    root can write, as everything this module writes is read by root or by dnsmasq."""
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o755)
            os.chmod(path, 0o755)  # whatever the umask: dnsmasq, as nobody, reads below it
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DnsError(f"{path} cannot be opened as a directory ({exc.strerror}); remove it and run again") from None
    st = os.fstat(fd)
    if st.st_uid != os.geteuid() or st.st_mode & 0o022:
        os.close(fd)
        raise DnsError(
            f"{path} is owned by uid {st.st_uid} with mode {stat.S_IMODE(st.st_mode):04o}; it must be root's and"
            " writable by root alone"
        )
    return fd


def _read(dir_fd: int, name: str) -> str | None:
    """A regular file's text (None: missing); a symlink or anything else reads as ``""`` (never ours)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError:
        return ""
    with os.fdopen(fd, "r", encoding="utf-8", errors="replace") as handle:
        return handle.read() if stat.S_ISREG(os.fstat(fd).st_mode) else ""


# --- the lab's supervision: our own process ---------------------------------------------------------------------


server_problem = _supervise.process_problem  # why a pid is not the dnsmasq this module started (None: it is)
_stat_fields = _supervise.stat_fields
starttime = _supervise.starttime


def listening(pid: int, address: str, port: int = 53, proc: str = "/proc") -> bool:
    """Whether the network namespace of ``pid`` has a UDP socket bound to ``address``:``port``."""
    ip = ipaddress.ip_address(address)
    words = struct.unpack("=4I", ip.packed) if ip.version == 6 else struct.unpack("=I", ip.packed)
    local = "".join(f"{word:08X}" for word in words) + f":{port:04X}"
    name = "udp6" if ip.version == 6 else "udp"
    try:
        with open(os.path.join(proc, str(pid), "net", name), encoding="ascii") as handle:
            return any(line.split()[1] == local for line in handle.readlines()[1:])
    except FileNotFoundError:
        return False


def _run_command(args: list[str]) -> tuple[int, str, str]:
    """``run_command`` for a :class:`Servers` made without an AnsibleModule's: ``(rc, stdout, stderr)``."""
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    return done.returncode, done.stdout, done.stderr


# --- the converge ------------------------------------------------------------------------------------------------


class Servers:
    """The DNS servers and resolv.conf files of one host, converged by :class:`._host.HostConverger`.

    ``run_command`` is AnsibleModule's (systemctl); ``systemd`` (default: whether systemd is PID 1) picks the
    supervision. Each method returns ``{"changed", "commands"}``; the commands are what check mode predicts.
    """

    def __init__(
        self,
        run_command=None,
        state_dir: str = _statedir.STATE_DIR,
        *,
        etc_netns: str = ETC_NETNS,
        unit_dir: str = UNIT_DIR,
        systemd: bool | None = None,
        proc: str = "/proc",
    ):
        self.run_command = run_command or _run_command
        self.state_dir = state_dir
        self.dir = dns_dir(state_dir)
        self.etc_netns = etc_netns
        self.unit_dir = unit_dir
        self.systemd = os.path.isdir(SYSTEMD_RUNNING) if systemd is None else systemd
        self.proc = proc
        self.warnings: list[str] = []
        self.tally: dict = {"started": [], "restarted": [], "reloaded": [], "stopped": [], "resolv": [0, 0]}
        self._children: dict[int, subprocess.Popen] = {}  # servers started by this run, reaped when stopped
        self._unit_done = False  # the template unit is checked once a run
        self._unit_changed = False  # and if it changed, every running instance restarts

    def _dnsmasq(self) -> str:
        found = binary()
        if not found:
            raise DnsError(
                "dnsmasq not found on the host: a dns network needs it (Debian/Ubuntu: the package dnsmasq-base;"
                " Fedora: dnsmasq); install it, or set overlay_install_deps: true"
            )
        return found

    def _systemctl(self, *args: str) -> tuple[int, str, str]:
        return self.run_command(["systemctl", *args])

    def _must(self, *args: str) -> None:
        rc, out, err = self._systemctl(*args)
        if rc != 0:
            raise DnsError(f"systemctl {' '.join(args)} exited {rc}: {(err or out).strip()}")

    # -- one network's server --

    def converge(self, net: dict, check_mode: bool) -> dict:
        """Write the network's config and hosts file where they differ, and start, restart or reload its server."""
        vni, netns = net["vni"], overlay_netns(net["vni"])
        commands: list[str] = []
        hosts_name, conf_name = f"{vni}.hosts", f"{vni}.conf"
        hosts = hosts_text(net)
        conf = config_text(net, os.path.join(self.dir, hosts_name))
        dnsmasq = self._dnsmasq()
        dir_fd = _open_dir(self.dir, create=not check_mode)
        try:
            changed = {}
            for name, text in ((hosts_name, hosts), (conf_name, conf)):
                current = _read(dir_fd, name) if dir_fd is not None else None
                if current is not None and current != text and not _marked(current):
                    raise DnsError(f"{os.path.join(self.dir, name)} was not written by netfleet.overlay; remove it")
                changed[name] = current != text
                if changed[name]:
                    commands.append(f"write {os.path.join(self.dir, name)}")
                    if not check_mode:
                        _statedir.replace_at(dir_fd, name, text, 0o644)
        finally:
            if dir_fd is not None:
                os.close(dir_fd)
        supervise = self._converge_unit if self.systemd else self._converge_process
        action, done = supervise(net, dnsmasq, changed[conf_name], changed[hosts_name], check_mode)
        if action:
            self.tally[action].append(netns)
        commands += done
        return {"changed": bool(commands), "commands": commands}

    def _converge_unit(self, net: dict, dnsmasq: str, conf_changed: bool, hosts_changed: bool, check_mode: bool):
        """systemd: the template unit in place, then the instance started, restarted (config) or reloaded (names)."""
        unit = instance(net["vni"])
        commands = self._ensure_unit(dnsmasq, check_mode)
        active = self._systemctl("is-active", "--quiet", unit)[0] == 0
        if not active:
            word = "start"
        elif conf_changed or self._unit_changed:
            word = "restart"
        elif hosts_changed:
            word = "reload"
        else:
            return None, commands
        commands.append(f"systemctl {word} {unit}")
        if not check_mode:
            self._must(word, unit)
        return _PAST[word], commands

    def _ensure_unit(self, dnsmasq: str, check_mode: bool) -> list[str]:
        """Write the template unit when it differs (once a run), then ``daemon-reload``."""
        if self._unit_done:
            return []
        self._unit_done = True
        text = unit_text(dnsmasq, self.dir)
        dir_fd = _open_dir(self.unit_dir, create=False)
        if dir_fd is None:
            raise DnsError(f"{self.unit_dir} does not exist, though systemd runs here")
        try:
            current = _read(dir_fd, UNIT)
            if current == text:
                return []
            if current is not None and not _marked(current):
                raise DnsError(f"{os.path.join(self.unit_dir, UNIT)} was not written by netfleet.overlay; remove it")
            if not check_mode:
                _statedir.replace_at(dir_fd, UNIT, text, 0o644)
        finally:
            os.close(dir_fd)
        if not check_mode:
            self._must("daemon-reload")
        self._unit_changed = True
        return [f"write {os.path.join(self.unit_dir, UNIT)}", "systemctl daemon-reload"]

    def _converge_process(self, net: dict, dnsmasq: str, conf_changed: bool, hosts_changed: bool, check_mode: bool):
        """No systemd: our own process, started again when the recorded pid is not our dnsmasq in the netns."""
        vni, netns = net["vni"], overlay_netns(net["vni"])
        expected = argv(dnsmasq, os.path.join(self.dir, f"{vni}.conf"))
        pid, problem = self._recorded(vni, expected, netns_path(netns))
        if pid is None:
            word = "start"
        elif conf_changed:
            word = "restart"
        elif hosts_changed:
            word = "reload"
        else:
            return None, []
        command = f"{word} dnsmasq in {netns}" + (f" ({problem})" if problem else "")
        if not check_mode:
            if word == "reload":
                self._reload(pid, vni)
            else:
                if pid is not None:
                    self._terminate(pid)
                self._spawn(net, expected)
        return _PAST[word], [command]

    def _pid_name(self, vni: int) -> str:
        return f"dns-{vni}.pid"

    def _recorded(self, vni: int, expected: list[str], netns_file: str | None) -> tuple[int | None, str | None]:
        """The recorded pid of the network's server if it is still ours, and else why not (None: no record)."""
        if not os.path.isdir(self.state_dir):
            return None, None
        text = _statedir.read_text(self._pid_name(vni), self.state_dir)
        if text is None:
            return None, None
        try:
            pid_text, start = text.split()
            pid = int(pid_text)
        except ValueError:
            return None, f"{self._pid_name(vni)} is not a pid record"
        problem = server_problem(pid, start, expected, netns_file, self.proc)
        return (None, problem) if problem else (pid, None)

    def _reload(self, pid: int, vni: int) -> None:
        """SIGHUP, then wait until the server's log says it has read the hosts file again, so the names are the new
        ones when the run ends (a warning if that takes longer than :data:`READY_TIMEOUT`)."""
        log = f"dns-{vni}.log"
        line = f"read {os.path.join(self.dir, f'{vni}.hosts')} "

        def reads() -> int:
            return (_statedir.read_text(log, self.state_dir) or "").count(line)

        before = reads()
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:
            raise DnsError(
                f"dnsmasq in {overlay_netns(vni)} (pid {pid}) exited just before its names were reloaded; run again"
                " to start it"
            ) from None
        deadline = time.monotonic() + READY_TIMEOUT
        while reads() <= before:
            if time.monotonic() > deadline:
                self.warnings.append(
                    f"dnsmasq in {overlay_netns(vni)} (pid {pid}) got SIGHUP but did not log a new read of its hosts"
                    f" file within {READY_TIMEOUT:g} s; see {os.path.join(self.state_dir, log)}"
                )
                return
            time.sleep(0.02)

    def _spawn(self, net: dict, expected: list[str]) -> None:
        """Start dnsmasq in the network's netns, in a session of its own, and wait until it has bound the gateway."""
        vni, netns = net["vni"], overlay_netns(net["vni"])
        log = f"dns-{vni}.log"
        log_fd = _statedir.open_file(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, self.state_dir)
        try:
            child = _supervise.spawn(expected, log_fd, netns)
        except (OSError, subprocess.SubprocessError) as exc:
            raise DnsError(f"cannot start dnsmasq in {netns}: {exc}") from None
        finally:
            os.close(log_fd)
        self._children[child.pid] = child
        _statedir.write_text(self._pid_name(vni), f"{child.pid} {starttime(child.pid, self.proc)}\n", self.state_dir)
        address = net["gateway"]["address"]
        deadline = time.monotonic() + READY_TIMEOUT
        while not listening(child.pid, address, proc=self.proc):
            if child.poll() is not None or time.monotonic() > deadline:
                if child.returncode is None:
                    self._terminate(child.pid)
                text = (_statedir.read_text(log, self.state_dir) or "").strip().splitlines()
                raise DnsError(
                    f"dnsmasq in {netns} did not come up on {address} port 53 (exit status {child.returncode});"
                    f" its log ({os.path.join(self.state_dir, log)}) ends: {' | '.join(text[-3:]) or '(empty)'}"
                )
            time.sleep(0.02)

    def _terminate(self, pid: int) -> None:
        """Stop a verified server of ours: SIGTERM, then SIGKILL if it is still there after :data:`STOP_TIMEOUT`."""
        _supervise.terminate(pid, self._children.pop(pid, None), self.proc, STOP_TIMEOUT)

    # -- servers that are no longer wanted --

    def prune(self, wanted: list[dict], check_mode: bool) -> dict:
        """Stop and remove every server whose network is gone or has dns off (all of them for an absent host)."""
        keep = {net["vni"] for net in wanted if net.get("dns")}
        commands: list[str] = []
        for vni in sorted(self._existing() - keep):
            commands += self._stop(vni, check_mode)
            self.tally["stopped"].append(overlay_netns(vni))
        if self.systemd and not keep:
            commands += self._remove_unit(check_mode)
        if not keep:
            commands += self._remove_dir(check_mode)
        return {"changed": bool(commands), "commands": commands}

    def _remove_dir(self, check_mode: bool) -> list[str]:
        """The servers' directory, once no server is left and nothing else is in it."""
        try:
            names = os.listdir(self.dir)
        except (FileNotFoundError, NotADirectoryError):
            return []
        if check_mode:  # what the stops just predicted leave behind
            names = [name for name in names if not re.fullmatch(r"[0-9]+\.(conf|hosts)", name)]
        if names:
            return []
        if not check_mode:
            os.rmdir(self.dir)
        return [f"remove {self.dir}"]

    def _existing(self) -> set[int]:
        """The VNIs that have a server's files here (config, hosts file or pid record)."""
        found = set()
        for directory, prefix in ((self.dir, ""), (self.state_dir, "dns-")):
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                for name in os.listdir(directory):
                    stem, _dot, ext = name.partition(".")
                    digits = stem[len(prefix) :] if stem.startswith(prefix) else ""
                    if digits.isdigit() and ext in ("conf", "hosts", "pid", "log"):
                        found.add(int(digits))
        return found

    def _stop(self, vni: int, check_mode: bool) -> list[str]:
        netns = overlay_netns(vni)
        commands = []
        if self.systemd:
            unit = instance(vni)
            if self._systemctl("is-active", "--quiet", unit)[0] == 0:
                commands.append(f"systemctl stop {unit}")
                if not check_mode:
                    self._must("stop", unit)
        else:
            expected = argv(binary() or "/usr/sbin/dnsmasq", os.path.join(self.dir, f"{vni}.conf"))
            netns_file = netns_path(netns)
            pid, _problem = self._recorded(vni, expected, netns_file if os.path.exists(netns_file) else None)
            if pid is not None:
                commands.append(f"stop dnsmasq in {netns}")
                if not check_mode:
                    self._terminate(pid)
            if not check_mode:
                for name in (self._pid_name(vni), f"dns-{vni}.log"):
                    _statedir.remove(name, self.state_dir)
        dir_fd = _open_dir(self.dir, create=False)
        if dir_fd is not None:
            try:
                for name in (f"{vni}.conf", f"{vni}.hosts"):
                    if _marked(_read(dir_fd, name)):
                        commands.append(f"remove {os.path.join(self.dir, name)}")
                        if not check_mode:
                            os.unlink(name, dir_fd=dir_fd)
            finally:
                os.close(dir_fd)
        return commands

    def _remove_unit(self, check_mode: bool) -> list[str]:
        dir_fd = _open_dir(self.unit_dir, create=False)
        if dir_fd is None:
            return []
        try:
            if not _marked(_read(dir_fd, UNIT)):
                return []
            if not check_mode:
                os.unlink(UNIT, dir_fd=dir_fd)
        finally:
            os.close(dir_fd)
        if not check_mode:
            self._must("daemon-reload")
        return [f"remove {os.path.join(self.unit_dir, UNIT)}", "systemctl daemon-reload"]

    # -- the endpoints' resolv.conf --

    def resolv(self, wanted: list[dict], check_mode: bool) -> dict:
        """``/etc/netns/<netns>/resolv.conf`` for each endpoint of a dns network in a netns the collection made;
        every marked one that is no longer wanted goes, with its directory when the collection made it too."""
        want = {
            ep["netns"]: (ep["name"], net)
            for net in wanted
            if net.get("dns")
            for ep in net["endpoints"]
            if not ep.get("attached")
        }
        commands: list[str] = []
        etc_fd = _open_dir(self.etc_netns, create=bool(want) and not check_mode)
        try:
            for name in sorted(os.listdir(etc_fd)) if etc_fd is not None else []:
                if name not in want:
                    commands += self._remove_resolv(etc_fd, name, check_mode)
            for netns, (endpoint, net) in sorted(want.items()):
                commands += self._write_resolv(etc_fd, netns, endpoint, net, check_mode)
        finally:
            if etc_fd is not None:
                os.close(etc_fd)
        return {"changed": bool(commands), "commands": commands}

    def _remove_resolv(self, etc_fd: int, name: str, check_mode: bool) -> list[str]:
        path = os.path.join(self.etc_netns, name)
        try:
            sub = _open_dir(path, create=False)
        except DnsError:
            return []  # not a directory that root alone writes: nothing of ours
        if sub is None:
            return []
        try:
            text = _read(sub, RESOLV)
            if not _marked(text):
                return []
            commands = [f"remove {os.path.join(path, RESOLV)}"]
            if not check_mode:
                os.unlink(RESOLV, dir_fd=sub)
            self.tally["resolv"][1] += 1
            if DIR_MADE in text.splitlines()[0].split() and not (set(os.listdir(sub)) - {RESOLV}):
                commands.append(f"remove {path}")
                if not check_mode:
                    os.rmdir(name, dir_fd=etc_fd)
            return commands
        finally:
            os.close(sub)

    def _write_resolv(self, etc_fd: int | None, netns: str, endpoint: str, net: dict, check_mode: bool) -> list[str]:
        path = os.path.join(self.etc_netns, netns)
        sub = _open_dir(path, create=False) if etc_fd is not None else None
        try:
            current = _read(sub, RESOLV) if sub is not None else None
            if current is not None and not _marked(current):
                self.warnings.append(
                    f"{os.path.join(path, RESOLV)} was not written by netfleet.overlay and is left as it is, so"
                    f" endpoint {endpoint} resolves with it, not with the DNS server of network {net['name']}"
                )
                return []
            made = sub is None or (current is not None and DIR_MADE in current.splitlines()[0].split())
            text = resolv_text(endpoint, net, made)
            if current == text:
                return []
            commands = [f"write {os.path.join(path, RESOLV)}"]
            self.tally["resolv"][0] += 1
            if not check_mode:
                if sub is None:
                    os.mkdir(netns, 0o755, dir_fd=etc_fd)
                    os.chmod(netns, 0o755, dir_fd=etc_fd)
                    sub = _open_dir(path, create=False)
                _statedir.replace_at(sub, RESOLV, text, 0o644)
            return commands
        finally:
            if sub is not None:
                os.close(sub)

    def summary(self) -> str:
        """The DNS part of overlay_host's summary line (empty when nothing changed)."""
        parts = [f"{key} {', '.join(self.tally[key])}" for key in _PAST.values() if self.tally[key]]
        parts += [f"stopped {', '.join(self.tally['stopped'])}"] if self.tally["stopped"] else []
        written, removed = self.tally["resolv"]
        if written or removed:
            parts.append(f"resolv.conf +{written} -{removed}")
        return f"dns ({'; '.join(parts)})" if parts else ""


_PAST = {"start": "started", "restart": "restarted", "reload": "reloaded"}
