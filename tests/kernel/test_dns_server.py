# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The DNS server of a dns network (``_dns.Servers``) on a real dnsmasq, in an overlay netns this test makes.

The server runs as the lab runs it (no systemd): started by the module in ``ovl-<vni>``, found again by its pid
record, reloaded with SIGHUP when the names change, started again when it died, stopped when its network goes.
Names are asked with ``getent hosts`` inside an endpoint netns whose ``/etc/netns/<ep>/resolv.conf`` the module
wrote (``ip netns exec`` mounts it over ``/etc/resolv.conf``). ``systemd-analyze verify`` checks the unit.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from ansible_collections.netfleet.overlay.plugins.module_utils import _dns

pytestmark = pytest.mark.skipif(not _dns.binary(), reason="dnsmasq is not installed (make deps)")

ETC_NETNS = "/etc/netns"
IP = shutil.which("ip") or "/usr/sbin/ip"


def sh(*argv: str, check: bool = True) -> None:
    subprocess.run(argv, check=check, capture_output=True)


@pytest.fixture
def world():
    """An overlay netns ``ovl-<vni>`` (a random high VNI) with the gateway on br0, and an endpoint netns joined to
    it by a veth; both deleted afterwards, with every dnsmasq the test started and the endpoint's /etc/netns."""
    vni = 16_000_000 + secrets.randbelow(700_000)
    tag = secrets.token_hex(3)
    ovl, ep = f"ovl-{vni}", f"dnsep{tag}"
    sh(IP, "netns", "add", ovl)
    sh(IP, "netns", "add", ep)
    for args in (
        ("-n", ovl, "link", "add", "br0", "type", "bridge"),
        ("-n", ovl, "addr", "add", "10.77.0.1/24", "dev", "br0"),
        ("-n", ovl, "link", "set", "br0", "up"),
        ("-n", ovl, "link", "add", "veth-x", "type", "veth", "peer", "name", "eth0", "netns", ep),
        ("-n", ovl, "link", "set", "veth-x", "master", "br0", "up"),
        ("-n", ep, "addr", "add", "10.77.0.2/24", "dev", "eth0"),
        ("-n", ep, "link", "set", "eth0", "up"),
        ("-n", ep, "link", "set", "lo", "up"),
    ):
        sh(IP, *args)
    # not under pytest's 0700 tmp_path: dnsmasq, as nobody, reads the hosts file below it
    top = Path(tempfile.mkdtemp(prefix="netfleet-dns-"))
    top.chmod(0o755)
    state = top / "state"
    etc_made = not os.path.exists(ETC_NETNS)  # then the module makes it, and the test removes it
    servers = _dns.Servers(state_dir=str(state), etc_netns=ETC_NETNS, systemd=False)
    try:
        yield {"vni": vni, "ovl": ovl, "ep": ep, "state": state, "servers": servers}
    finally:
        record = state / f"dns-{vni}.pid"
        if record.exists():
            pid = int(record.read_text().split()[0])
            with_pid = _dns.server_problem(pid, record.read_text().split()[1], _expected(servers, vni), None)
            if with_pid is None:  # still the dnsmasq this test started
                os.kill(pid, signal.SIGKILL)
        sh(IP, "netns", "del", ovl, check=False)
        sh(IP, "netns", "del", ep, check=False)
        shutil.rmtree(os.path.join(ETC_NETNS, ep), ignore_errors=True)
        if etc_made:
            with contextlib.suppress(OSError):  # only when empty: another test may use it meanwhile
                os.rmdir(ETC_NETNS)
        shutil.rmtree(top, ignore_errors=True)


def _expected(servers, vni):
    return _dns.argv(_dns.binary(), os.path.join(servers.dir, f"{vni}.conf"))


def network(world, names, **extra):
    return {
        "name": "backend",
        "vni": world["vni"],
        "dns": True,
        "gateway": {"address": "10.77.0.1", "prefixlen": 24, "mac": "06:00:00:00:01:01"},
        "names": names,
        "endpoints": [{"name": world["ep"], "netns": world["ep"], "attached": False}],
        **extra,
    }


def resolve(world, name):
    proc = subprocess.run(
        [IP, "netns", "exec", world["ep"], "getent", "hosts", name], capture_output=True, text=True, check=False
    )
    return proc.stdout.split()[0] if proc.returncode == 0 else None


def pid_of(world):
    return int((world["state"] / f"dns-{world['vni']}.pid").read_text().split()[0])


def converge(world, net, check_mode=False):
    """One run's DNS part; check mode on a Servers of its own (one per run), so the tally counts the real runs."""
    servers = (
        _dns.Servers(state_dir=str(world["state"]), etc_netns=ETC_NETNS, systemd=False)
        if check_mode
        else world["servers"]
    )
    out = servers.converge(net, check_mode)
    resolv = servers.resolv([net], check_mode)
    return out["commands"] + resolv["commands"]


def test_names_resolve_follow_changes_without_a_restart_and_a_dead_server_comes_back(world):
    ovl, ep = world["ovl"], world["ep"]
    net = network(world, {"web1": "10.77.0.2", "web1.backend": "10.77.0.2"})
    predicted = converge(world, net, check_mode=True)
    assert f"start dnsmasq in {ovl}" in predicted
    assert f"write {ETC_NETNS}/{ep}/resolv.conf" in predicted
    assert not os.path.exists(os.path.join(ETC_NETNS, ep))  # check mode wrote nothing
    assert converge(world, net) == predicted
    assert resolve(world, "web1") == "10.77.0.2"
    assert resolve(world, "web1.backend") == "10.77.0.2"
    assert resolve(world, "db") is None  # nothing else resolves: no upstream, no /etc/hosts
    assert resolve(world, "localhost.localdomain") is None
    assert converge(world, net) == []  # idempotent
    pid = pid_of(world)

    # a names change: the file is replaced and the same process re-reads it
    net = network(world, {"web1": "10.77.0.2", "web1.backend": "10.77.0.2", "db": "10.77.0.9"})
    assert converge(world, net) == [
        f"write {world['servers'].dir}/{world['vni']}.hosts",
        f"reload dnsmasq in {ovl}",
    ]
    assert world["servers"].warnings == []  # the server logged that it read the new names before the run ended
    assert resolve(world, "db") == "10.77.0.9"
    assert pid_of(world) == pid

    # killed: the next run finds the pid is no longer ours and starts another one
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    commands = converge(world, net)
    assert len(commands) == 1 and commands[0].startswith(f"start dnsmasq in {ovl} (process {pid} ")
    assert pid_of(world) != pid
    assert resolve(world, "db") == "10.77.0.9"

    # dns off: the server stops and its files go, and so does the endpoint's resolv.conf with its directory
    new_pid = pid_of(world)
    servers = world["servers"]
    off = dict(net, dns=False)
    stopped = servers.prune([off], False)["commands"] + servers.resolv([off], False)["commands"]
    assert stopped[0] == f"stop dnsmasq in {ovl}"
    assert f"remove {ETC_NETNS}/{ep}/resolv.conf" in stopped and f"remove {ETC_NETNS}/{ep}" in stopped
    assert not os.path.exists(f"/proc/{new_pid}") or _state(new_pid) == "Z"
    assert not os.path.exists(servers.dir)  # no server left: the directory goes too
    assert not list(world["state"].glob("dns-*"))
    assert servers.summary() == (f"dns (started {ovl}, {ovl}; reloaded {ovl}; stopped {ovl}; resolv.conf +1 -1)")


def _state(pid):
    with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
        return handle.read().rpartition(")")[2].split()[0]


def test_a_foreign_resolv_conf_is_left_alone_with_a_warning(world):
    path = os.path.join(ETC_NETNS, world["ep"])
    os.makedirs(path)
    with open(os.path.join(path, "resolv.conf"), "w", encoding="utf-8") as handle:
        handle.write("nameserver 192.0.2.53\n")
    servers = world["servers"]
    net = network(world, {})
    assert servers.resolv([net], False)["commands"] == []
    assert "was not written by netfleet.overlay" in servers.warnings[0]
    assert servers.resolv([], False)["commands"] == []  # and never removed
    assert Path(path, "resolv.conf").read_text(encoding="utf-8") == "nameserver 192.0.2.53\n"


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    unit = tmp_path / _dns.UNIT
    unit.write_text(_dns.unit_text(_dns.binary(), "/run/netfleet-overlay-dns"))
    instance = tmp_path / _dns.instance(300)
    instance.symlink_to(unit)
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(instance)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "netfleet-overlay-dns" not in proc.stderr, proc.stderr  # no warning about our unit at all

    broken = tmp_path / "broken" / _dns.UNIT
    broken.parent.mkdir()
    broken.write_text(unit.read_text().replace("ExecStart=", "ExecStart=relative/"))
    (broken.parent / _dns.instance(300)).symlink_to(broken)
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(broken.parent / _dns.instance(300))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0  # the check can fail
