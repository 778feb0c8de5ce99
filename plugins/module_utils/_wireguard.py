# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: the WireGuard tunnel of encrypted networks, and its keys.  May change without notice.
"""One WireGuard interface per host, ``wg-overlay`` in the namespace ``ovl-wg``, carrying the VXLAN of every
encrypted network between the hosts that share one.

The interface is made in the host's namespace, so its UDP socket (port ``overlay_wireguard_port``) is on the
underlay, and then moved into ``ovl-wg``, where it holds the host's tunnel address; an encrypted network's vxlan
is made in ``ovl-wg`` with that address as ``local``, so its socket is reachable only through the tunnel.

Kernel or userspace. Where the kernel has WireGuard (``/sys/module/wireguard``, or the module among the kernel's
modules) the interface is a ``wireguard`` link made over netlink and configured by ``wg`` run inside ``ovl-wg``.
Elsewhere ``wireguard-go`` makes a TUN device in the host's namespace and serves it on its UAPI socket
``/run/wireguard/wg-overlay.sock``, which ``wg`` reaches from any namespace; the MTU is set while the TUN is still
in the host's namespace, then the TUN moves (wireguard-go keeps serving it). Supervision: where systemd is PID 1 the
daemon is the transient unit :data:`UNIT` (``systemd-run``); elsewhere (the lab) the module starts it in a session
of its own and records its pid and start time (:mod:`._supervise`). A daemon that died takes its TUN with it, so a
run that finds no interface starts it again, moves and reconfigures it.

Keys. ``<state_dir>/wireguard/private.key`` (0600 in a 0700 directory, on the ``/run`` tmpfs: never on persistent
storage) is made by ``wg genkey`` the first time; ``next.key`` is a staged rotation key, which a run with
``rotate`` makes the interface's key (the peers given are then the peers' next keys) before it replaces
``private.key``. A private key is only ever held in memory, in those files and in the interface: it is in no
result, command line, warning, log or exception text. ``wg show dump`` prints it on its first line; that line is
read here and compared, never returned. Optional ``no_log_values`` (the module's set) gets every private key read,
so that Ansible masks it should it ever appear.

Configuration is idempotent: the interface's key, port and peers are read (``wg show wg-overlay dump``) and only
what differs is written, in one ``wg set wg-overlay [private-key <file>] [listen-port <port>] [peer <key> remove]...
[peer <key> endpoint <vtep:port> allowed-ips <address> persistent-keepalive 25]...``: the peers that do not change
are not named and keep their sessions. Not ``wg syncconf``: it replaces the whole interface, so a file without
``PrivateKey`` clears the key (and one with it would put the key in a second file).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import ipaddress
import os
import platform
import shutil
import subprocess
import time

from ansible_collections.netfleet.overlay.plugins.module_utils import _cmdline, _links, _statedir, _supervise
from ansible_collections.netfleet.overlay.plugins.module_utils._model import (
    WIREGUARD_IFNAME,
    WIREGUARD_KEEPALIVE,
    WIREGUARD_NETNS,
    netns_path,
)
from ansible_collections.netfleet.overlay.plugins.module_utils._module import ModuleError
from ansible_collections.netfleet.overlay.plugins.module_utils._objects import Step, ip_cmd
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl import namespace as nl

STATE_DIR = _statedir.STATE_DIR
KEY_DIR = "wireguard"  # under the state directory
PRIVATE = "private.key"
NEXT = "next.key"
PID = "wireguard-go.pid"
LOG = "wireguard-go.log"
UAPI_DIR = "/run/wireguard"
UNIT = "netfleet-overlay-wireguard.service"  # transient (systemd-run): nothing is written to /etc
SYSTEMD_RUNNING = "/run/systemd/system"
SYS_MODULE = "/sys/module/wireguard"
READY_TIMEOUT = 5.0  # seconds a started wireguard-go has to make its TUN and UAPI socket
# A rotation waits for the fleet's instant (overlay_plan's switch_at) at most this long; an instant further away is
# taken as a clock that is wrong, and the host switches at once.
SWITCH_WAIT_MAX = 120.0
SBIN_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
DAEMON_ENV = {"PATH": ":".join(SBIN_PATH), "LOG_LEVEL": "error"}
# what making a ``wireguard`` link answers where the kernel's WireGuard is there but unusable: wireguard-go instead
KERNEL_UNUSABLE = frozenset(
    {errno.EOPNOTSUPP, errno.ENOTSUP, errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT, errno.ENODEV, errno.ENOENT}
)


EMPTY_FACTS = {
    "implementation": None,
    "public_key": None,
    "public_key_next": None,
    "address": None,
    "port": None,
    "peers": [],
}


class WireGuardError(ModuleError):
    """The tunnel or its keys could not be read or made; the message says what, never a private key."""


# --- what is on the host -----------------------------------------------------------------------------------------


def _which(name: str) -> str | None:
    path = os.pathsep.join([os.environ.get("PATH", ""), *SBIN_PATH])
    found = shutil.which(name, path=path)
    return os.path.realpath(found) if found else None


def wg_binary() -> str | None:
    """Path of ``wg`` (wireguard-tools), or None."""
    return _which("wg")


def go_binary() -> str | None:
    """Path of ``wireguard-go``, links resolved (it is in the command line the daemon is recognised by), or None."""
    return _which("wireguard-go")


def kernel_available(sys_module: str = SYS_MODULE, modules_root: str = "/lib/modules", release: str | None = None):
    """Whether the kernel has WireGuard: loaded or built in (``/sys/module/wireguard``), or a module it can load."""
    if os.path.isdir(sys_module):
        return True
    base = os.path.join(modules_root, release or platform.release())
    suffixes = tuple(f"/wireguard.ko{ext}" for ext in ("", ".xz", ".zst", ".gz"))
    for name in ("modules.dep", "modules.builtin"):
        try:
            with open(os.path.join(base, name), encoding="utf-8", errors="replace") as handle:
                if any(line.split(":", 1)[0].endswith(suffixes) for line in handle):
                    return True
        except OSError:
            continue
    return False


def implementation_available(kernel: bool | None = None, go: str | None = None) -> str | None:
    """``kernel`` when the kernel has WireGuard, else ``userspace`` when wireguard-go is installed, else None."""
    if kernel_available() if kernel is None else kernel:
        return "kernel"
    if go or (go is None and go_binary()):
        return "userspace"
    return None


def key_dir(state_dir: str = STATE_DIR) -> str:
    return os.path.join(state_dir, KEY_DIR)


def valid_key(text: str | None) -> bool:
    """Whether ``text`` is a WireGuard key (base64 of 32 bytes)."""
    try:
        return text is not None and len(text) == 44 and len(base64.b64decode(text, validate=True)) == 32
    except ValueError:
        return False


def endpoint_key(text: str | None) -> tuple | None:
    """``(ip, port)`` of ``198.18.1.2:51820`` or ``[2001:db8::2]:51820`` (None: ``(none)`` or unreadable)."""
    if not text or text == "(none)":
        return None
    host, _sep, port = text.rpartition(":")
    try:
        return ipaddress.ip_address(host.strip("[]")), int(port)
    except ValueError:
        return None


def endpoint_text(text: str) -> str:
    """The canonical way to write an endpoint (IPv6 in brackets)."""
    key = endpoint_key(text)
    if key is None:
        raise WireGuardError(f"wireguard.peers: endpoint {text!r} is not ADDRESS:PORT")
    ip, port = key
    return f"[{ip.compressed}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def host_prefix(address: str) -> str:
    ip = ipaddress.ip_address(address)
    return f"{ip.compressed}/{ip.max_prefixlen}"


def parse_dump(text: str) -> dict:
    """``wg show <if> dump``: the interface line (private key kept only to be compared) and the peers."""
    lines = [line.split("\t") for line in text.splitlines() if line.strip()]
    if not lines or len(lines[0]) < 4:
        raise WireGuardError(f"wg show {WIREGUARD_IFNAME} dump printed no interface line")
    head = lines[0]
    dump = {
        "private_key": None if head[0] == "(none)" else head[0],
        "port": int(head[2]) if head[2].isdigit() else None,
        "peers": {},
    }
    for fields in lines[1:]:
        if len(fields) < 8:
            continue
        dump["peers"][fields[0]] = {
            "public_key": fields[0],
            "endpoint": None if fields[2] == "(none)" else fields[2],
            "allowed_ips": sorted(ip for ip in fields[3].split(",") if ip and ip != "(none)"),
            "keepalive": None if fields[7] == "off" else int(fields[7]),
        }
    return dump


def peer_words(peer: dict) -> list:
    """``wg set`` words that make a peer: its public key, endpoint (VTEP:port), tunnel address and keepalive."""
    return [
        "peer",
        peer["public_key"],
        "endpoint",
        endpoint_text(peer["endpoint"]),
        "allowed-ips",
        host_prefix(peer["address"]),
        "persistent-keepalive",
        WIREGUARD_KEEPALIVE,
    ]


def _held(peer: dict) -> tuple:
    """What of a peer in ``wg show dump`` is compared with what is wanted."""
    return endpoint_key(peer["endpoint"]), peer["allowed_ips"], peer["keepalive"]


def _wanted(peer: dict) -> tuple:
    return endpoint_key(peer["endpoint"]), [host_prefix(peer["address"])], WIREGUARD_KEEPALIVE


def config_words(dump: dict | None, key_path: str, key_differs: bool, port: int, peers: list[dict]) -> list:
    """The words after ``wg set wg-overlay`` that make the interface what is wanted, or [] when it is: the private
    key (a file), the listen port, each peer that goes (``remove``) and each that is new or differs.

    One ``wg set`` is one configuration change, so a rotation switches the key and the peers' keys together; peers
    that do not change are not named and keep their sessions. (``wg syncconf`` is not used: a file without
    ``PrivateKey`` would clear the interface's key, and the key is never written anywhere but its own file.)
    """
    words: list = []
    if key_differs:
        words += ["private-key", key_path]
    have = (dump or {}).get("peers") or {}
    if dump is None or dump["port"] != port:
        words += ["listen-port", port]
    want = {p["public_key"]: p for p in peers}
    for key in sorted(set(have) - set(want)):
        words += ["peer", key, "remove"]
    for key, peer in sorted(want.items()):
        if key not in have or _held(have[key]) != _wanted(peer):
            words += peer_words(peer)
    return words


def _run_command(args, data=None, **_kwargs):
    """``run_command`` without an AnsibleModule: ``(rc, stdout, stderr)``; ``data`` goes to stdin."""
    done = subprocess.run(args, input=data, capture_output=True, text=True, check=False)
    return done.returncode, done.stdout, done.stderr


# --- keys --------------------------------------------------------------------------------------------------------


class Keys:
    """The key files of one host, in ``<state_dir>/wireguard`` (0700; files 0600)."""

    def __init__(self, run_command=None, state_dir: str = STATE_DIR, no_log_values: set | None = None):
        self.run_command = run_command or _run_command
        self.state_dir = state_dir
        self.dir = key_dir(state_dir)
        self.no_log_values = no_log_values
        self.secrets: set[str] = set()

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def _wg(self) -> str:
        found = wg_binary()
        if not found:
            raise WireGuardError(
                "wg not found on the host: an encrypted network needs it (Debian/Ubuntu: the package"
                " wireguard-tools); install it, or set overlay_install_deps: true"
            )
        return found

    def read(self, name: str) -> str | None:
        """A private key file's key (None: no file); a file that does not hold a key is an error."""
        if not os.path.isdir(self.dir):
            return None
        try:
            text = _statedir.read_text(name, self.dir)
        except (_statedir.StateDirError, UnicodeDecodeError) as exc:
            raise WireGuardError(f"{self.path(name)} cannot be read: {exc}") from None
        if text is None:
            return None
        key = text.strip()
        if not valid_key(key):
            raise WireGuardError(f"{self.path(name)} does not hold a WireGuard key; remove it and run again")
        self._hide(key)
        return key

    def _hide(self, key: str) -> None:
        self.secrets.add(key)
        if self.no_log_values is not None:
            self.no_log_values.add(key)

    def scrub(self, text: str) -> str:
        """``text`` without any private key this run has read (what a tool prints is never trusted to omit it)."""
        for secret in self.secrets:
            text = text.replace(secret, "(a private key)")
        return text

    def public(self, private: str | None) -> str | None:
        """The public key of ``private`` (``wg pubkey``, the key on stdin), or None."""
        if private is None:
            return None
        rc, out, err = self.run_command([self._wg(), "pubkey"], data=private)
        public = (out or "").strip()
        if rc != 0 or not valid_key(public):
            raise WireGuardError(self.scrub(f"wg pubkey exited {rc}: {(err or '').strip() or 'no public key printed'}"))
        return public

    def generate(self, name: str) -> None:
        """``wg genkey`` into ``name`` (0600, written atomically; the key never leaves this process otherwise)."""
        rc, out, err = self.run_command([self._wg(), "genkey"])
        key = (out or "").strip()
        if rc != 0 or not valid_key(key):
            said = "(its output is not shown)" if out else (err or "").strip()
            raise WireGuardError(f"wg genkey exited {rc}: {said}")
        self._hide(key)
        self._write(name, key + "\n")

    def _open(self) -> int:
        os.close(_statedir.open_dir(self.state_dir))
        return _statedir.open_dir(self.dir)

    def _write(self, name: str, text: str) -> None:
        try:
            dir_fd = self._open()
        except _statedir.StateDirError as exc:
            raise WireGuardError(str(exc)) from None
        try:
            _statedir.replace_at(dir_fd, name, text, 0o600)
        finally:
            os.close(dir_fd)

    def promote(self) -> None:
        """``next.key`` becomes ``private.key`` (rename: one or the other, never neither)."""
        dir_fd = self._open()
        try:
            os.rename(NEXT, PRIVATE, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        finally:
            os.close(dir_fd)

    def remove_all(self, check_mode: bool) -> list[str]:
        """Every file of ours in the key directory, then the directory; returns the commands."""
        try:
            names = sorted(os.listdir(self.dir))
        except (FileNotFoundError, NotADirectoryError):
            return []
        ours = [name for name in names if name in (PRIVATE, NEXT, PID, LOG) or name.endswith(".tmp")]
        commands = [f"rm {self.path(name)}" for name in ours]
        keep = set(names) - set(ours)  # not ours: it stays, and so does the directory
        if not keep:
            commands.append(f"rmdir {self.dir}")
        if not check_mode:
            for name in ours:
                _statedir.remove(name, self.dir)
            if not keep:
                with contextlib.suppress(OSError):
                    os.rmdir(self.dir)
        return commands


def key_state(
    run_command=None,
    state_dir: str = STATE_DIR,
    *,
    state: str = "present",
    rotate: bool = False,
    check_mode: bool = False,
    no_log_values: set | None = None,
) -> dict:
    """The work of the ``wireguard_key`` module: make the key pair (and stage a rotation key) or remove them.

    Returns ``changed``, ``public_key`` and ``public_key_next`` (None when not staged), ``commands``; never a
    private key. Check mode predicts: a key it would make has no public key yet (None).
    """
    keys = Keys(run_command, state_dir, no_log_values)
    commands: list[str] = []
    if state == "absent":
        for name in (PRIVATE, NEXT):
            if os.path.lexists(keys.path(name)):
                commands.append(f"rm {keys.path(name)}")
                if not check_mode:
                    _statedir.remove(name, keys.dir)
        return {"changed": bool(commands), "public_key": None, "public_key_next": None, "commands": commands}
    private, staged = keys.read(PRIVATE), keys.read(NEXT)
    if private is None:
        commands.append(f"wg genkey > {keys.path(PRIVATE)}")
        if not check_mode:
            keys.generate(PRIVATE)
            private = keys.read(PRIVATE)
    if rotate and staged is None:
        commands.append(f"wg genkey > {keys.path(NEXT)}")
        if not check_mode:
            keys.generate(NEXT)
            staged = keys.read(NEXT)
    return {
        "changed": bool(commands),
        "public_key": keys.public(private),
        "public_key_next": keys.public(staged),
        "commands": commands,
    }


# --- reading the interface ---------------------------------------------------------------------------------------


def _kind(link: dict | None) -> str | None:
    """``kernel`` (a wireguard link), ``userspace`` (a TUN, wireguard-go's), None: no link."""
    if link is None:
        return None
    if link["kind"] == "wireguard":
        return "kernel"
    if link["kind"] == "tun":
        return "userspace"
    raise WireGuardError(
        f"{WIREGUARD_IFNAME} in netns {WIREGUARD_NETNS} is a {link['kind'] or 'plain'} device, not WireGuard;"
        " remove it and run again"
    )


def wg_prefix(implementation: str | None, wg: str) -> list[str]:
    """How ``wg`` reaches the interface: through wireguard-go's UAPI socket from here, or inside ``ovl-wg``."""
    if implementation == "kernel":
        return ["nsenter", f"--net={netns_path(WIREGUARD_NETNS)}", wg]
    return [wg]


def read_dump(run_command, implementation: str, wg: str) -> dict:
    rc, out, err = run_command([*wg_prefix(implementation, wg), "show", WIREGUARD_IFNAME, "dump"])
    if rc != 0:
        raise WireGuardError(f"wg show {WIREGUARD_IFNAME} dump exited {rc}: {(err or '').strip()}")
    return parse_dump(out)


def facts(run_command=None, state_dir: str = STATE_DIR, no_log_values: set | None = None, namespace=None) -> dict:
    """The ``wireguard`` facts: implementation, public keys, tunnel address, port and peers; no private key.

    ``namespace`` opens a namespace for reading (default :class:`._rtnl.namespace.Namespace`: raw netlink only)."""
    run_command = run_command or _run_command
    keys = Keys(run_command, state_dir, no_log_values)
    wg = wg_binary()
    out = dict(EMPTY_FACTS, peers=[])
    link = None
    if nl.netns_exists(WIREGUARD_NETNS):
        with contextlib.suppress(nl.NetlinkOpError), (namespace or nl.Namespace)(WIREGUARD_NETNS) as ns:
            link = ns.link(WIREGUARD_IFNAME)
            if link is not None:
                addrs = ns.addresses(link["index"])
                out["address"] = addrs[0]["address"] if addrs else None
    out["implementation"] = _kind(link) if link is not None else implementation_available()
    if wg:
        out["public_key"] = keys.public(keys.read(PRIVATE))
        out["public_key_next"] = keys.public(keys.read(NEXT))
        if link is not None:
            dump = read_dump(run_command, out["implementation"], wg)
            out["port"] = dump["port"]
            out["peers"] = [
                {"public_key": p["public_key"], "endpoint": p["endpoint"], "allowed_ips": p["allowed_ips"]}
                for _key, p in sorted(dump["peers"].items())
            ]
    return out


# --- the converge ------------------------------------------------------------------------------------------------


class Tunnel:
    """``wg-overlay`` in ``ovl-wg``, its daemon (userspace), its keys and peers, converged by ``overlay_host``."""

    def __init__(
        self,
        run_command,
        check_mode: bool,
        warnings: list[str],
        state_dir: str = STATE_DIR,
        *,
        systemd: bool | None = None,
        kernel: bool | None = None,
        no_log_values: set | None = None,
        proc: str = "/proc",
    ):
        self.run_command = run_command or _run_command
        self.check_mode = check_mode
        self.warnings = warnings
        self.state_dir = state_dir
        self.keys = Keys(self.run_command, state_dir, no_log_values)
        self.no_log_values = no_log_values
        self.systemd = os.path.isdir(SYSTEMD_RUNNING) if systemd is None else systemd
        self.kernel = kernel
        self.proc = proc
        self.namespace = nl.Namespace  # what facts() reads ovl-wg with
        self.tally: list[str] = []
        self._children: dict = {}
        self.fallback = False  # the kernel refused its wireguard link in this run: wireguard-go runs instead

    # -- helpers --

    def _wg(self) -> str:
        return self.keys._wg()

    def _run(self, args: list[str], what: str) -> str:
        rc, out, err = self.run_command(args)
        if rc != 0:
            raise WireGuardError(self.keys.scrub(f"{what} exited {rc}: {(err or '').strip()}"))
        return out

    def _go(self) -> str:
        found = go_binary()
        if not found:
            raise WireGuardError(
                "the kernel has no WireGuard and wireguard-go is not installed: an encrypted network needs one"
                " (Debian/Ubuntu: the package wireguard-go); install it, or set overlay_install_deps: true"
            )
        return found

    def _implementation(self, link: dict | None, host_link: dict | None) -> str:
        current = _kind(link)
        if current:
            return current
        if host_link is not None and host_link["kind"] == "wireguard":
            return "kernel"
        found = implementation_available(self.kernel)
        if found is None:
            self._go()  # raises with what to install
        return found

    # -- the daemon --

    def daemon_argv(self) -> list[str]:
        return [self._go(), "-f", WIREGUARD_IFNAME]

    def _recorded(self) -> tuple[int | None, str | None]:
        """The recorded wireguard-go pid if it is still ours in this host namespace; else why not (None: no record)."""
        if not os.path.isdir(self.keys.dir):
            return None, None
        record = _supervise.parse_record(_statedir.read_text(PID, self.keys.dir))
        if record is None:
            return None, None
        pid, start = record
        problem = _supervise.process_problem(pid, start, self.daemon_argv(), "/proc/self/ns/net", self.proc)
        return (None, problem) if problem else (pid, None)

    def _daemon_state(self) -> tuple[bool, str | None]:
        """Whether wireguard-go runs, and else why the one recorded is not ours any more (None: none recorded)."""
        if self.systemd:
            return self.run_command(["systemctl", "is-active", "--quiet", UNIT])[0] == 0, None
        pid, problem = self._recorded()
        return pid is not None, problem

    def _start_daemon(self, handles) -> None:
        """Start wireguard-go in the host namespace and wait for its TUN and UAPI socket."""
        argv = self.daemon_argv()
        if self.systemd:
            self.run_command(["systemctl", "reset-failed", UNIT])  # a failed transient unit blocks its name
            self._run(
                [
                    "systemd-run",
                    f"--unit={UNIT}",
                    "--collect",
                    "--property=Restart=no",
                    *(f"--setenv={k}={v}" for k, v in DAEMON_ENV.items()),
                    *argv,
                ],
                "systemd-run wireguard-go",
            )
            child = None
        else:
            log_fd = _statedir.open_file(LOG, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, self.keys.dir)
            try:
                child = _supervise.spawn(argv, log_fd, None, DAEMON_ENV)
            except (OSError, subprocess.SubprocessError) as exc:
                raise WireGuardError(f"cannot start wireguard-go: {exc}") from None
            finally:
                os.close(log_fd)
            self._children[child.pid] = child
            _statedir.write_text(PID, _supervise.record_text(child.pid, self.proc), self.keys.dir)
        host = handles(None)
        sock_path = os.path.join(UAPI_DIR, f"{WIREGUARD_IFNAME}.sock")
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            host._wrote()  # another process made the link: read the links again
            if host.link(WIREGUARD_IFNAME) is not None and os.path.exists(sock_path):
                return
            exited = child is not None and child.poll() is not None
            if exited or time.monotonic() > deadline:
                if child is not None and not exited:
                    _supervise.terminate(child.pid, child, self.proc)
                log = (_statedir.read_text(LOG, self.keys.dir) or "").strip().splitlines() if child else []
                raise WireGuardError(
                    f"wireguard-go did not make {WIREGUARD_IFNAME} and {sock_path} within {READY_TIMEOUT:g} s"
                    + (
                        f" (exit status {child.returncode}); its log ends: {' | '.join(log[-3:]) or '(empty)'}"
                        if child is not None
                        else f"; see journalctl -u {UNIT}"
                    )
                )
            time.sleep(0.02)

    def _stop_daemon(self, check_mode: bool) -> list[str]:
        if self.systemd:
            if self.run_command(["systemctl", "is-active", "--quiet", UNIT])[0] != 0:
                return []
            if not check_mode:
                self._run(["systemctl", "stop", UNIT], f"systemctl stop {UNIT}")
            return [f"systemctl stop {UNIT}"]
        if go_binary() is None:
            return []
        pid, _problem = self._recorded()
        if pid is None:
            return []
        if not check_mode:
            _supervise.terminate(pid, self._children.pop(pid, None), self.proc)
        return [f"stop wireguard-go -f {WIREGUARD_IFNAME} (pid {pid})"]

    # -- converge --

    def converge(self, handles, want: dict | None) -> dict:
        """Make (``want``: overlay_host's ``wireguard``) or remove (None) the tunnel; see the module docstring.

        Returns ``changed``, ``commands`` and ``summary``; raises :class:`WireGuardError`, with ``commands`` and
        ``commands_done``, when a step fails.
        """
        self.tally = []
        self.fallback = False
        if want is None:
            return self._teardown(handles)
        commands: list[str] = []
        generated: list[str] = []
        steps: list[Step] = []
        wg = self._wg()
        keys = self.keys
        # keys first: the interface is configured from the files
        private = keys.read(PRIVATE)
        if private is None:
            commands.append(f"wg genkey > {keys.path(PRIVATE)}")
            self.tally.append("new key")
            if not self.check_mode:
                keys.generate(PRIVATE)
                private = keys.read(PRIVATE)
                generated = commands[:]
        staged = keys.read(NEXT) if want.get("rotate") else None
        key_file = NEXT if staged else PRIVATE
        wanted_key = staged or private
        # the namespace
        netns = _links.Netns({"name": WIREGUARD_NETNS, "state": "present"}, handles, self.check_mode).execute()
        commands += netns["commands"]
        ns = handles(WIREGUARD_NETNS)
        host = handles(None)
        link = ns.link(WIREGUARD_IFNAME)
        host_link = host.link(WIREGUARD_IFNAME)
        impl = self._implementation(link, host_link)
        made = link is None
        if made:
            steps += self._make_steps(handles, impl, host_link, want["mtu"])
            before = {"mtu": want["mtu"], "up": False, "address": None, "lo": False}
        else:
            before = {
                "mtu": link["mtu"],
                "up": link["up"],
                "address": [f"{a['address']}/{a['prefixlen']}" for a in ns.addresses(link["index"])],
            }
        lo = ns.link("lo")
        if not (lo and lo["up"]):
            steps.append(
                Step(
                    ip_cmd(WIREGUARD_NETNS, "link", "set", "lo", "up"),
                    lambda: handles(WIREGUARD_NETNS).link_set(
                        "lo", handles(WIREGUARD_NETNS).link_index("lo"), state="up"
                    ),
                )
            )
        steps += self._link_steps(handles, before, want)
        # the key, the port and the peers
        dump = None if made else read_dump(self.run_command, impl, wg)
        prefix = wg_prefix(impl, wg)
        peers = [p for p in want.get("peers") or [] if p.get("public_key")]
        key_differs = dump is None or dump["private_key"] != wanted_key
        words = config_words(dump, keys.path(key_file), key_differs, want["port"], peers)
        if words:
            args = [*prefix, "set", WIREGUARD_IFNAME, *(str(word) for word in words)]
            switch_at = want.get("switch_at") if staged and dump is not None else None

            def configure():
                if switch_at:  # every host of the rotation switches at the same instant
                    self._wait_until(switch_at)
                self._run(args, "wg set")

            steps.append(Step(_cmdline.line("wg", "set", WIREGUARD_IFNAME, *words), configure))
            if dump is not None:
                if key_differs:
                    self.tally.append("rotated" if staged else "key set")
                peer_part = self._peer_tally(dump, peers)
                if peer_part:
                    self.tally.append(peer_part)
        if staged:
            steps.append(Step(f"mv {keys.path(NEXT)} {keys.path(PRIVATE)}", keys.promote))
            if "rotated" not in self.tally:
                self.tally.append("rotated")
        commands += [step.command for step in steps]
        done: list[str] = generated + ([] if self.check_mode else netns["commands"])
        if not self.check_mode:
            for step in steps:
                try:
                    step.run()
                except (nl.NetlinkOpError, WireGuardError, _statedir.StateDirError, OSError) as exc:
                    raise WireGuardError(
                        f"wireguard: {step.command}: {exc}", commands=commands, commands_done=done
                    ) from None
                done.append(step.command)
        if self.fallback:
            impl = "userspace"
            self.tally.append("started wireguard-go (the kernel refused the wireguard link)")
            # after the kernel link's command, which ran wireguard-go instead
            at = next(n for n, cmd in enumerate(commands) if cmd.endswith("type wireguard")) + 1
            commands.insert(at, _cmdline.line(self._go(), "-f", WIREGUARD_IFNAME) + "  # the kernel refused the link")
        if made:
            self.tally.insert(0, f"made {WIREGUARD_IFNAME} ({impl})")
        return {"changed": bool(commands), "commands": commands, "summary": self.summary() if commands else ""}

    def _wait_until(self, switch_at: float) -> None:
        """Sleep until this host's rotation instant; say so when it got there late or the instant is too far off."""
        delay = switch_at - time.time()
        if delay > SWITCH_WAIT_MAX:
            self.warnings.append(
                f"wireguard: the rotation instant is {delay:.0f} s away (more than {SWITCH_WAIT_MAX:.0f} s: is this"
                " host's clock right?); switched keys at once"
            )
        elif delay > 0:
            time.sleep(delay)
        elif delay < -1:
            self.warnings.append(
                f"wireguard: switched keys {-delay:.1f} s after this host's rotation instant (its run started"
                " late); its peers could not reach it with the new keys for that long"
            )

    def _make_steps(self, handles, impl: str, host_link: dict | None, mtu: int) -> list[Step]:
        """Make the interface in the host namespace (or start wireguard-go), set its MTU there, move it."""
        host = handles(None)
        steps = []
        if impl == "kernel":
            if host_link is None:
                steps.append(
                    Step(
                        ip_cmd(None, "link", "add", WIREGUARD_IFNAME, "mtu", mtu, "type", "wireguard"),
                        lambda: self._kernel_link(handles, mtu),
                    )
                )
        else:
            running, problem = self._daemon_state()
            if not (running and host_link is not None):
                if running:  # its TUN is gone (removed by hand): a new daemon
                    steps.append(Step(f"stop wireguard-go -f {WIREGUARD_IFNAME}", lambda: self._stop_daemon(False)))
                steps.append(
                    Step(
                        _cmdline.line(self._go(), "-f", WIREGUARD_IFNAME)
                        + ("  # systemd-run --unit " + UNIT if self.systemd else "  # in a session of its own"),
                        lambda: self._start_daemon(handles),
                    )
                )
                self.tally.append("started wireguard-go" + (f" ({problem})" if problem else ""))
        if impl != "kernel" or (host_link is not None and host_link["mtu"] != mtu):
            steps.append(
                Step(
                    ip_cmd(None, "link", "set", WIREGUARD_IFNAME, "mtu", mtu),
                    lambda: host.link_set(WIREGUARD_IFNAME, host.link_index(WIREGUARD_IFNAME), mtu=mtu),
                )
            )
        steps.append(
            Step(
                ip_cmd(None, "link", "set", WIREGUARD_IFNAME, "netns", WIREGUARD_NETNS),
                lambda: host.link_set(WIREGUARD_IFNAME, host.link_index(WIREGUARD_IFNAME), net_ns_fd=WIREGUARD_NETNS),
            )
        )
        return steps

    def _kernel_link(self, handles, mtu: int) -> None:
        """Make the kernel's ``wireguard`` link; where the kernel refuses the link type (the module is there but
        unusable: EOPNOTSUPP and the like) and wireguard-go is installed, start wireguard-go instead, with a
        warning, and give its TUN the MTU (the next steps move it and configure it as the kernel link)."""
        host = handles(None)
        try:
            host.link_add(WIREGUARD_IFNAME, "wireguard", mtu=mtu)
            return
        except nl.NetlinkOpError as exc:
            cause = exc.__cause__
            code = getattr(cause, "code", None) or getattr(cause, "errno", None)
            if code not in KERNEL_UNUSABLE or go_binary() is None:
                raise
            reason = str(exc)
        self.warnings.append(
            f"wireguard: the kernel has WireGuard but refused to make {WIREGUARD_IFNAME} ({reason});"
            " using wireguard-go instead"
        )
        self._start_daemon(handles)
        host._wrote()
        host.link_set(WIREGUARD_IFNAME, host.link_index(WIREGUARD_IFNAME), mtu=mtu)
        self.fallback = True

    def _link_steps(self, handles, before: dict, want: dict) -> list[Step]:
        def ns():
            return handles(WIREGUARD_NETNS)

        steps = []
        if before["mtu"] != want["mtu"]:
            steps.append(
                Step(
                    ip_cmd(WIREGUARD_NETNS, "link", "set", WIREGUARD_IFNAME, "mtu", want["mtu"]),
                    lambda: ns().link_set(WIREGUARD_IFNAME, ns().link_index(WIREGUARD_IFNAME), mtu=want["mtu"]),
                )
            )
        address = f"{ipaddress.ip_address(want['address']).compressed}/{want['prefixlen']}"
        steps += _links.address_steps(ns, WIREGUARD_NETNS, WIREGUARD_IFNAME, before["address"], address)
        if not before["up"]:
            steps.append(
                Step(
                    ip_cmd(WIREGUARD_NETNS, "link", "set", WIREGUARD_IFNAME, "up"),
                    lambda: ns().link_set(WIREGUARD_IFNAME, ns().link_index(WIREGUARD_IFNAME), state="up"),
                )
            )
        return steps

    @staticmethod
    def _peer_tally(dump: dict, peers: list[dict]) -> str:
        want = {p["public_key"]: p for p in peers}
        have = dump["peers"]
        added, removed = len(set(want) - set(have)), len(set(have) - set(want))
        changed = sum(1 for key in set(want) & set(have) if _held(have[key]) != _wanted(want[key]))
        return f"peers +{added} -{removed} ~{changed}" if added or removed or changed else ""

    def _teardown(self, handles) -> dict:
        commands: list[str] = []
        done: list[str] = []

        def do(command: str, fn) -> None:
            commands.append(command)
            if not self.check_mode:
                try:
                    fn()
                except (nl.NetlinkOpError, OSError) as exc:
                    raise WireGuardError(
                        f"wireguard: {command}: {exc}", commands=commands, commands_done=done
                    ) from None
                done.append(command)

        exists = nl.netns_exists(WIREGUARD_NETNS)
        link = handles(WIREGUARD_NETNS).link(WIREGUARD_IFNAME) if exists else None
        host = handles(None)
        host_link = host.link(WIREGUARD_IFNAME)
        if host_link is not None and host_link["kind"] != "wireguard":
            host_link = None  # a TUN in the host namespace is wireguard-go's: it goes with the daemon, if ours
        # the daemon (userspace) first: its TUN goes with it
        stopped = self._stop_daemon(self.check_mode) if go_binary() or self.systemd else []
        commands += stopped
        done += stopped if not self.check_mode else []
        if (link is not None and _kind(link) == "kernel") or (link is not None and not stopped):
            ns = handles(WIREGUARD_NETNS)
            do(
                ip_cmd(WIREGUARD_NETNS, "link", "del", WIREGUARD_IFNAME),
                lambda: ns.link_del(WIREGUARD_IFNAME, ns.link_index(WIREGUARD_IFNAME)),
            )
        if host_link is not None:
            do(
                ip_cmd(None, "link", "del", WIREGUARD_IFNAME),
                lambda: host.link_del(WIREGUARD_IFNAME, host.link_index(WIREGUARD_IFNAME)),
            )
        if exists:
            result = _links.Netns({"name": WIREGUARD_NETNS, "state": "absent"}, handles, self.check_mode)
            out = result.execute()
            if not self.check_mode:
                handles.forget(WIREGUARD_NETNS)
            commands += out["commands"]
            done += out["commands"] if not self.check_mode else []
        commands += self.keys.remove_all(self.check_mode)
        summary = f"wireguard (removed {WIREGUARD_IFNAME})" if commands else ""
        return {"changed": bool(commands), "commands": commands, "summary": summary}

    def summary(self) -> str:
        return f"wireguard ({'; '.join(self.tally)})" if self.tally else "wireguard (configured)"

    def facts(self) -> dict:
        """The facts' ``wireguard`` dict after the converge (check mode: what is there now)."""
        return facts(self.run_command, self.state_dir, self.no_log_values, self.namespace)
