# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The holder: PID 1 of a simulated host, run inside its new namespaces by ``netfleet-lab _holder NAME DIR``.

It makes the host's private hostname, /sys, /run and /etc overlay, then reaps children until it is killed or the
lab's directory is removed. Standard library only (it runs under ``python -I -S``).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import signal
import socket
import struct
import sys

MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 1


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _encoded(text: str | None) -> bytes | None:
    return text.encode() if text is not None else None


def _mount(libc, src: str | None, target: str, fstype: str | None, *, flags: int = 0, data: str | None = None) -> None:
    enc = _encoded
    if libc.mount(enc(src), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {fstype or ''} on {target}: {os.strerror(err)}")


def _umount(libc, target: str) -> None:
    if libc.umount2(target.encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"umount {target}: {os.strerror(err)}")


def _link_up(name: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH22x", name.encode(), 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(s, SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH22x", name.encode(), flags | IFF_UP))


def _write(path: str, text: str) -> None:
    if os.path.islink(path):
        os.unlink(path)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def holder_main(name: str, state_dir: str) -> int:
    hostdir = os.path.join(state_dir, "hosts", name)
    errfile = hostdir + ".err"
    try:
        if os.getpid() != 1:
            raise RuntimeError("the holder must run as PID 1 of a new pid namespace")
        lease = os.open(hostdir, os.O_RDONLY | os.O_DIRECTORY)  # this very directory, not a later namesake
        libc = _libc()
        socket.sethostname(name)
        _mount(libc, None, "/", None, flags=MS_REC | MS_PRIVATE)
        _umount(libc, "/sys")
        _mount(libc, "sysfs", "/sys", "sysfs", flags=MS_NOSUID | MS_NODEV | MS_NOEXEC)
        _mount(libc, "tmpfs", "/run", "tmpfs", flags=MS_NOSUID | MS_NODEV, data="mode=0755,size=64m")
        os.makedirs("/run/netns", mode=0o755)
        os.makedirs("/run/sshd", mode=0o755)
        os.makedirs("/run/lock", mode=0o1777)
        os.chmod("/run/lock", 0o1777)
        upper, work = os.path.join(hostdir, "upper"), os.path.join(hostdir, "work")
        _mount(libc, "overlay", "/etc", "overlay", data=f"lowerdir=/etc,upperdir={upper},workdir={work}")
        with open(os.path.join(state_dir, "hosts", "etc-hosts"), encoding="utf-8") as f:
            lab_hosts = f.read()
        _write("/etc/hostname", name + "\n")
        _write(
            "/etc/hosts",
            f"127.0.0.1\tlocalhost\n127.0.1.1\t{name}\n::1\tlocalhost ip6-localhost ip6-loopback\n{lab_hosts}",
        )
        # No nameserver: lookups fail at once on lo instead of waiting for the real DNS.
        _write("/etc/resolv.conf", "# netfleet-lab host: no DNS, names come from /etc/hosts\noptions timeout:1\n")
        for knob in ("/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"):
            with contextlib.suppress(OSError):
                _write(knob, "0\n")
        _link_up("lo")
        _write(os.path.join(hostdir, "ready"), "ok\n")
    except Exception as exc:  # report to `up` and die: unshare exits, up notices
        with contextlib.suppress(OSError):
            _write(errfile, f"{name}: {exc}\n")
        return 1

    sigs = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
    for sig in sigs - {signal.SIGCHLD}:
        signal.signal(sig, lambda *_: sys.exit(0))  # PID 1 only receives signals it handles
    signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    while True:
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        info = signal.sigtimedwait(sigs, 1.0)
        if info is not None and info.si_signo != signal.SIGCHLD:
            return 0
        if os.fstat(lease).st_nlink == 0:  # the lab was removed under us: do not linger
            return 0


# --------------------------------------------------------------------------------------------
