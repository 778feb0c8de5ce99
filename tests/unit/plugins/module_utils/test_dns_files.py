# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The DNS part of overlay_host on plain data: what the files say, the pid check, and the systemd supervision
(driven through a recorded ``systemctl``); the real dnsmasq is in tests/kernel/test_dns_server.py and the lab's."""

from __future__ import annotations

import os

import pytest

from ansible_collections.netfleet.overlay.plugins.module_utils import _dns

NET = {
    "name": "backend",
    "vni": 300,
    "dns": True,
    "gateway": {"address": "10.214.0.1", "prefixlen": 24, "mac": "06:00:00:01:2c:01"},
    "names": {"web1": "10.214.0.3", "web1.backend": "10.214.0.3", "app1.backend": "10.214.0.2", "app1": "10.214.0.2"},
    "endpoints": [
        {"name": "web1", "netns": "web1", "attached": False},
        {"name": "app1", "netns": "app1", "attached": True},
    ],
}


def test_the_config_serves_only_the_hosts_file_on_the_gateway():
    text = _dns.config_text(NET, "/run/netfleet-overlay-dns/300.hosts")
    lines = text.splitlines()
    assert lines[0].startswith(_dns.MARK)
    settings = [line for line in lines if not line.startswith("#")]
    assert settings == [
        "listen-address=10.214.0.1",
        "bind-dynamic",
        "port=53",
        "no-resolv",
        "no-poll",
        "no-hosts",
        "local=/#/",
        "addn-hosts=/run/netfleet-overlay-dns/300.hosts",
        "user=nobody",
        "pid-file=",
        "log-facility=-",
    ]
    assert not any(line.startswith(("server=", "dhcp", "interface=", "resolv-file")) for line in settings)


def test_the_hosts_file_groups_names_by_address_in_a_stable_order():
    shuffled = dict(NET, names=dict(reversed(list(NET["names"].items()))))
    assert _dns.hosts_text(shuffled) == _dns.hosts_text(NET)
    assert _dns.hosts_text(NET).splitlines()[1:] == ["10.214.0.2 app1 app1.backend", "10.214.0.3 web1 web1.backend"]
    v6 = dict(NET, names={"a": "fd00::2", "b": "10.0.0.2", "c": "fd00:0:0::2"})
    assert _dns.hosts_text(v6).splitlines()[1:] == ["10.0.0.2 b", "fd00::2 a c"]
    assert _dns.hosts_text(dict(NET, names={})).splitlines()[1:] == []


def test_the_unit_runs_the_server_in_the_netns_and_reloads_with_sighup():
    text = _dns.unit_text("/usr/sbin/dnsmasq", "/run/netfleet-overlay-dns")
    assert text.startswith(_dns.MARK)
    assert "NetworkNamespacePath=/run/netns/ovl-%i\n" in text
    assert "ExecStart=/usr/sbin/dnsmasq --keep-in-foreground --conf-file=/run/netfleet-overlay-dns/%i.conf\n" in text
    assert "ExecReload=/bin/kill -HUP $MAINPID\n" in text
    assert "Restart=on-failure\n" in text
    assert "[Install]" not in text  # started by each run, never enabled: /run is empty after a boot


def test_resolv_conf_points_at_the_gateway_and_is_marked():
    text = _dns.resolv_text("web1", NET, dir_made=True)
    assert text.splitlines()[0] == f"{_dns.MARK} endpoint=web1 network=backend {_dns.DIR_MADE}"
    assert text.splitlines()[-1] == "nameserver 10.214.0.1"
    assert "search" not in text
    assert _dns.DIR_MADE not in _dns.resolv_text("web1", NET, dir_made=False)


# --- the pid check, on a fake /proc --------------------------------------------------------------------------


def fake_process(proc, pid, *, cmdline, start="4242", state="S", netns):
    base = proc / str(pid)
    (base / "ns").mkdir(parents=True)
    # comm may hold spaces and parentheses: the fields are read after the last ')'
    fields = [state, *["0"] * 18, start, "0"]
    (base / "stat").write_text(f"{pid} (dns (masq)) {' '.join(fields)}\n")
    (base / "cmdline").write_bytes(b"\0".join(arg.encode() for arg in cmdline) + b"\0")
    os.link(netns, base / "ns" / "net")  # the same inode: the same namespace


@pytest.fixture
def proc(tmp_path):
    netns = tmp_path / "ovl-300"
    netns.write_text("")
    other = tmp_path / "ovl-301"
    other.write_text("")
    return tmp_path / "proc", netns, other


ARGV = _dns.argv("/usr/sbin/dnsmasq", "/run/netfleet-overlay-dns/300.conf")


def test_the_pid_check_accepts_only_our_live_dnsmasq_in_its_netns(proc):
    root, netns, other = proc
    fake_process(root, 10, cmdline=ARGV, netns=netns)
    assert _dns.server_problem(10, "4242", ARGV, str(netns), str(root)) is None
    assert _dns.server_problem(10, "4242", ARGV, None, str(root)) is None  # its netns is gone: argv and start time
    assert "not in the network namespace" in _dns.server_problem(10, "4242", ARGV, str(other), str(root))
    assert "another process" in _dns.server_problem(10, "999", ARGV, str(netns), str(root))  # the pid was reused
    assert "is gone" in _dns.server_problem(11, "4242", ARGV, str(netns), str(root))
    fake_process(root, 12, cmdline=["/usr/sbin/dnsmasq", "--conf-file=/etc/dnsmasq.conf"], netns=netns)
    assert "runs '/usr/sbin/dnsmasq --conf-file=/etc/dnsmasq.conf'" in _dns.server_problem(
        12, "4242", ARGV, str(netns), str(root)
    )
    fake_process(root, 13, cmdline=ARGV, state="Z", netns=netns)
    assert "has exited" in _dns.server_problem(13, "4242", ARGV, str(netns), str(root))


def test_listening_reads_the_netns_udp_table(tmp_path):
    (tmp_path / "7" / "net").mkdir(parents=True)
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    (tmp_path / "7" / "net" / "udp").write_text(
        header + " 3148: 0100D60A:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000  0  0 1 2\n"
    )
    (tmp_path / "7" / "net" / "udp6").write_text(header)
    assert _dns.listening(7, "10.214.0.1", proc=str(tmp_path)) is (os.sys.byteorder == "little")
    assert not _dns.listening(7, "10.214.0.2", proc=str(tmp_path))
    assert not _dns.listening(7, "fd00::1", proc=str(tmp_path))
    assert not _dns.listening(8, "10.214.0.1", proc=str(tmp_path))


# --- systemd: the commands, through a recorded systemctl -----------------------------------------------------


class Systemctl:
    """``run_command`` that records systemctl calls; ``active`` is the set of running instances."""

    def __init__(self, active=()):
        self.active = set(active)
        self.calls = []

    def __call__(self, args, data=None):
        assert args[0] == "systemctl"
        self.calls.append(" ".join(args[1:]))
        if args[1] == "is-active":
            return (0 if args[-1] in self.active else 3), "", ""
        return 0, "", ""


@pytest.fixture
def systemd(tmp_path, monkeypatch):
    monkeypatch.setattr(_dns, "binary", lambda: "/usr/sbin/dnsmasq")
    (tmp_path / "units").mkdir()
    (tmp_path / "etc-netns").mkdir()

    def servers(systemctl):
        return _dns.Servers(
            systemctl,
            str(tmp_path / "state"),
            etc_netns=str(tmp_path / "etc-netns"),
            unit_dir=str(tmp_path / "units"),
            systemd=True,
        )

    return servers, tmp_path


def test_systemd_starts_reloads_on_names_and_restarts_on_config(systemd):
    servers, tmp = systemd
    unit = _dns.instance(300)
    first = Systemctl()
    check = servers(first).converge(NET, check_mode=True)["commands"]
    assert first.calls == [f"is-active --quiet {unit}"]  # check mode only reads
    assert not (tmp / "units" / _dns.UNIT).exists()
    done = servers(first).converge(NET, check_mode=False)["commands"]
    assert (
        done
        == check
        == [
            f"write {tmp}/state-dns/300.hosts",
            f"write {tmp}/state-dns/300.conf",
            f"write {tmp}/units/{_dns.UNIT}",
            "systemctl daemon-reload",
            f"systemctl start {unit}",
        ]
    )
    running = Systemctl(active=[unit])
    assert servers(running).converge(NET, check_mode=False)["commands"] == []
    assert running.calls == [f"is-active --quiet {unit}"]
    names = dict(NET, names={"web1": "10.214.0.3"})
    assert servers(running).converge(names, check_mode=False)["commands"] == [
        f"write {tmp}/state-dns/300.hosts",
        f"systemctl reload {unit}",
    ]
    moved = dict(names, gateway=dict(NET["gateway"], address="10.214.0.129"))
    assert servers(running).converge(moved, check_mode=False)["commands"][-1] == f"systemctl restart {unit}"
    two = Systemctl(active=[unit, _dns.instance(301)])  # a changed unit restarts every running instance
    servers(two).converge(dict(moved, vni=301), check_mode=False)
    old_unit = (tmp / "units" / _dns.UNIT).read_text()
    (tmp / "units" / _dns.UNIT).write_text(old_unit.replace("RestartSec=1", "RestartSec=9"))
    s = servers(two)
    assert s.converge(moved, check_mode=False)["commands"][-1] == f"systemctl restart {unit}"
    assert (
        s.converge(dict(moved, vni=301), check_mode=False)["commands"][-1] == f"systemctl restart {_dns.instance(301)}"
    )
    assert (tmp / "units" / _dns.UNIT).read_text() == old_unit
    s.prune([moved], check_mode=False)  # 301 goes again
    dead = Systemctl()  # Restart= gave up, or someone stopped it: the run starts it
    assert servers(dead).converge(moved, check_mode=False)["commands"] == [f"systemctl start {unit}"]

    # the network goes: stop, remove its files and, with no dns network left, the unit
    gone = servers(running)
    assert gone.prune([], check_mode=False)["commands"] == [
        f"systemctl stop {unit}",
        f"remove {tmp}/state-dns/300.conf",
        f"remove {tmp}/state-dns/300.hosts",
        f"remove {tmp}/units/{_dns.UNIT}",
        "systemctl daemon-reload",
        f"remove {tmp}/state-dns",
    ]
    assert not (tmp / "state-dns").exists() and os.listdir(tmp / "units") == []
    assert gone.summary() == "dns (stopped ovl-300)"


def test_a_unit_file_that_is_not_ours_is_never_replaced(systemd):
    servers, tmp = systemd
    (tmp / "units" / _dns.UNIT).write_text("[Service]\nExecStart=/bin/true\n")
    with pytest.raises(_dns.DnsError, match=r"was not written by netfleet\.overlay"):
        servers(Systemctl()).converge(NET, check_mode=False)
    pruned = servers(Systemctl()).prune([], check_mode=False)["commands"]  # our own files go, the unit stays
    assert pruned == [
        f"remove {tmp}/state-dns/300.conf",
        f"remove {tmp}/state-dns/300.hosts",
        f"remove {tmp}/state-dns",
    ]
    assert (tmp / "units" / _dns.UNIT).exists()


def test_resolv_conf_only_for_made_namespaces_and_removed_with_its_directory(systemd):
    servers, tmp = systemd
    etc = tmp / "etc-netns"
    (etc / "web2").mkdir()  # a directory the user made: it stays when our file goes
    s = servers(Systemctl())
    wanted = [dict(NET, endpoints=[*NET["endpoints"], {"name": "web2", "netns": "web2", "attached": False}])]
    assert s.resolv(wanted, check_mode=False)["commands"] == [
        f"write {etc}/web1/resolv.conf",
        f"write {etc}/web2/resolv.conf",
    ]
    assert not (etc / "app1").exists()  # attached: the user's namespace, the user's resolver
    assert s.resolv(wanted, check_mode=False)["commands"] == []
    assert servers(Systemctl()).resolv([dict(NET, dns=False)], check_mode=True)["commands"] == [
        f"remove {etc}/web1/resolv.conf",
        f"remove {etc}/web1",
        f"remove {etc}/web2/resolv.conf",
    ]
    assert s.resolv([dict(NET, dns=False)], check_mode=False)["commands"][-1] == f"remove {etc}/web2/resolv.conf"
    assert sorted(os.listdir(etc)) == ["web2"] and os.listdir(etc / "web2") == []
    assert s.summary() == "dns (resolv.conf +2 -2)"


def test_the_binary_is_found_by_its_real_path_whatever_the_path(tmp_path, monkeypatch):
    real = tmp_path / "usr" / "sbin" / "dnsmasq"
    real.parent.mkdir(parents=True)
    real.write_text("#!/bin/sh\n")
    real.chmod(0o755)
    (tmp_path / "sbin").symlink_to(real.parent)
    monkeypatch.setenv("PATH", str(tmp_path / "sbin"))
    assert _dns.binary() == str(real)  # the server's command line is the same from a run with /sbin first
