# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tools/netfleet-lab: isolation of the simulated hosts, the underlay, idempotency and clean teardown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from lab_helpers import (
    BIN,
    TOOL,
    Lab,
    build_lab,
    mount_lines,
    needs_root,
    proc_state,
    processes_mentioning,
    root_netns,
)

pytestmark = [pytest.mark.lab, needs_root]


def test_hostnames_differ(lab3):
    names = [lab3.exec(f"h{k}", "hostname").stdout.strip() for k in (1, 2, 3)]
    assert names == ["h1", "h2", "h3"]
    assert lab3.exec("sw", "hostname").stdout.strip() == "sw"


def test_netns_in_one_host_is_invisible_elsewhere(lab3):
    name = f"nfltest-{uuid.uuid4().hex[:8]}"
    assert lab3.exec("h1", "ip", "netns", "add", name).returncode == 0
    try:
        assert name in lab3.exec("h1", "ip", "netns", "list").stdout
        assert name not in lab3.exec("h2", "ip", "netns", "list").stdout
        assert name not in root_netns()
        assert not os.path.exists(f"/run/netns/{name}")
    finally:
        assert lab3.exec("h1", "ip", "netns", "delete", name).returncode == 0


def test_host_has_private_etc_run_sys(lab3):
    res = lab3.exec("h2", "sh", "-c", "cat /etc/hostname; ls /sys/class/net; ls /run")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.split()
    assert lines[0] == "h2"
    assert "eth0" in lines and "lo" in lines  # /sys shows the host's own devices
    assert "netns" in lines and "sshd" in lines
    assert "h2" in lab3.exec("h2", "getent", "hosts", "h2").stdout


def test_underlay(lab3):
    res = lab3.exec("h2", "ip", "-4", "-o", "addr", "show", "dev", "eth0")
    assert "198.18.1.2/16" in res.stdout
    assert "default via 198.18.0.1 dev eth0" in lab3.exec("h2", "ip", "route").stdout
    assert lab3.exec("h2", "cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "0"
    assert lab3.exec("sw", "cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "0"
    assert "mtu 1500" in lab3.exec("h1", "ip", "link", "show", "eth0").stdout
    # h1 reaches h3 over the switch: a TCP connect to a closed port is refused (not timed out)
    probe = (
        "import socket,sys\n"
        "try:\n socket.create_connection(('198.18.1.3', 9), timeout=3)\n"
        "except ConnectionRefusedError:\n sys.exit(0)\n"
        "except OSError as e:\n sys.exit(str(e))\n"
    )
    res = lab3.exec("h1", sys.executable, "-c", probe)
    assert res.returncode == 0, res.stderr


def test_exec_passes_exit_code_and_cwd(lab3):
    assert lab3.exec("h1", "sh", "-c", "exit 7").returncode == 7
    res = lab3.exec("h1", "pwd", cwd=str(lab3.dir))
    assert res.stdout.strip() == str(lab3.dir)
    res = lab3.exec("h42", "true")
    assert res.returncode == 1
    assert "no host 'h42'" in res.stderr


def test_list(lab3):
    res = lab3.tool("list", "--dir", str(lab3.dir))
    assert res.returncode == 0
    for name, addr in (("sw", "198.18.0.1/16"), ("h1", "198.18.1.1/16"), ("h3", "198.18.1.3/16")):
        line = next(ln for ln in res.stdout.splitlines() if ln.startswith(name + " "))
        assert "alive" in line and addr in line


def test_inventory_vars(lab3):
    text = lab3.inventory.read_text(encoding="utf-8")
    assert 'ansible_connection: "netfleet.overlay.nsenter"' in text
    assert f'ansible_nsenter_pidfile: "{lab3.dir}/hosts/h2.pid"' in text
    assert 'overlay_vtep: "198.18.1.3"' in text
    assert "all:\n  children:\n    lab:" in text and "\n  vars:" not in text  # nothing in all.vars
    # the pid first, then its start time and namespaces (what the nsenter connection checks)
    words = (lab3.dir / "hosts" / "h1.pid").read_text().split()
    holder = lab3.state()["holders"]["h1"]
    assert int(words[0]) == holder["pid"] and " ".join(words) == holder["record"]
    fields = dict(w.split("=") for w in words[1:])
    with open(f"/proc/{holder['pid']}/stat") as f:
        assert fields["start"] == f.read().rsplit(")", 1)[1].split()[19]  # field 22
    for kind in ("user", "mnt", "uts", "ipc", "net", "pid"):
        assert os.readlink(f"/proc/{holder['pid']}/ns/{kind}") == f"{kind}:[{fields[kind]}]"
    assert fields["user"] == os.readlink("/proc/self/ns/user")[6:-1]  # the lab needs no user namespace


def test_up_same_n_is_noop_and_other_n_is_error(lab3):
    before = lab3.state()
    res = lab3.up()
    assert res.returncode == 0, res.stderr
    assert "nothing to do" in res.stdout
    assert lab3.state() == before
    res = lab3.up(hosts=4)
    assert res.returncode == 1
    assert "already up" in res.stderr and "Nothing changed" in res.stderr
    assert lab3.state() == before
    assert lab3.exec("h1", "true").returncode == 0


def test_not_root_is_refused(tmp_path):
    cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, str(TOOL)]
    args = ["up", "--hosts", "1", "--dir", str(tmp_path / "x")]
    res = subprocess.run([*cmd, *args], capture_output=True, text=True, check=False)
    assert res.returncode == 2
    assert "must run as root" in res.stderr
    assert not (tmp_path / "x").exists()


def test_down_leaves_nothing_behind(lab_dir):
    mounts_before, netns_before = mount_lines(), root_netns()
    lab = Lab(lab_dir, 2)
    res = lab.up()
    assert res.returncode == 0, res.stderr
    pids = lab.pids()
    assert all(proc_state(p) not in (None, "Z") for p in pids)
    inner = f"ovl-{uuid.uuid4().hex[:8]}"
    assert lab.exec("h1", "ip", "netns", "add", inner).returncode == 0  # a named netns inside a host
    res = lab.down()
    assert res.returncode == 0, res.stderr
    assert "removed" in res.stdout
    assert all(proc_state(p) is None for p in pids), [(p, proc_state(p)) for p in pids]
    assert not processes_mentioning(str(lab_dir))
    assert not lab_dir.exists()
    new_mounts = {ln for ln in mount_lines() - mounts_before if " /run/netns/" not in ln}  # others' tests
    assert not new_mounts
    assert not [ln for ln in mount_lines() if str(lab_dir) in ln]
    assert inner not in root_netns()
    assert not [n for n in root_netns() - netns_before if n.startswith("ovl-")]
    res = lab.down()  # idempotent
    assert res.returncode == 0
    assert "nothing to do" in res.stdout


def test_stop_start_reboot_one_host(lab_dir):
    lab = Lab(lab_dir, 2)
    assert lab.up().returncode == 0
    old = lab.state()["holders"]["h2"]
    inner = f"nfltest-{uuid.uuid4().hex[:8]}"
    assert lab.exec("h2", "ip", "netns", "add", inner).returncode == 0
    res = lab.tool("stop", "--dir", str(lab_dir), "h2")
    assert res.returncode == 0, res.stderr
    assert proc_state(old["pid"]) is None and proc_state(old["unshare"]) is None
    assert not (lab_dir / "hosts" / "h2.pid").exists()  # Ansible's nsenter connection finds it unreachable
    assert "stopped" in next(
        ln for ln in lab.tool("list", "--dir", str(lab_dir)).stdout.splitlines() if ln.startswith("h2 ")
    )
    res = lab.exec("h2", "true")
    assert res.returncode == 1 and "is stopped" in res.stderr
    assert "vh2" not in lab.exec("sw", "ip", "-o", "link").stdout  # unplugged from the switch
    assert lab.tool("stop", "--dir", str(lab_dir), "h2").returncode == 0  # already stopped: fine
    assert lab.tool("stop", "--dir", str(lab_dir), "sw").returncode == 1  # only hosts
    res = lab.tool("start", "--dir", str(lab_dir), "h2")
    assert res.returncode == 0, res.stderr
    new = lab.state()["holders"]["h2"]
    assert new["pid"] != old["pid"] and proc_state(new["pid"]) not in (None, "Z")
    assert int((lab_dir / "hosts" / "h2.pid").read_text().split()[0]) == new["pid"]
    res = lab.exec("h2", "sh", "-c", "ip netns list; ip -4 -o addr show dev eth0; ip route; ping -c1 -W2 198.18.1.1")
    assert res.returncode == 0, res.stdout + res.stderr
    assert inner not in res.stdout  # it came back empty
    assert "198.18.1.2/16" in res.stdout and "default via 198.18.0.1" in res.stdout
    res = lab.tool("reboot", "--dir", str(lab_dir), "h2")
    assert res.returncode == 0 and "h2 stopped" in res.stdout and "h2 started" in res.stdout, res.stderr
    assert lab.exec("h2", "ping", "-c1", "-W2", "198.18.1.1").returncode == 0
    res = lab.down()
    assert res.returncode == 0, res.stderr
    assert not processes_mentioning(str(lab_dir))


def test_down_after_crash_kills_only_holders(lab_dir):
    lab = Lab(lab_dir, 2)
    assert lab.up().returncode == 0
    state = lab.state()
    # a crashed host: its holder died
    h1 = state["holders"]["h1"]["unshare"]
    assert proc_state(h1) is not None
    os.kill(h1, signal.SIGKILL)
    # a stale pid file that now names an unrelated process: down must leave it alone
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        (lab_dir / "hosts" / "h9.pid").write_text(f"{bystander.pid}\n")
        res = lab.tool("list", "--dir", str(lab_dir))
        assert any(ln.startswith("h1 ") and "dead" in ln for ln in res.stdout.splitlines())
        res = lab.up()
        assert res.returncode == 1 and "broken" in res.stderr
        res = lab.down()
        assert res.returncode == 0, res.stderr
        assert f"h9:{bystander.pid}" in res.stdout
        assert bystander.poll() is None
        assert not lab_dir.exists()
        assert not processes_mentioning(str(lab_dir))
    finally:
        bystander.kill()
        bystander.wait()


def test_down_after_up_was_killed_midway(lab_dir):
    cmd = [sys.executable, str(TOOL), "up", "--hosts", "20", "--dir", str(lab_dir)]
    up = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not list((lab_dir / "hosts").glob("*.upid")) and time.monotonic() < deadline:
        time.sleep(0.005)
    up.kill()
    up.wait()
    res = Lab(lab_dir, 20).down()
    assert res.returncode == 0, res.stderr
    assert not lab_dir.exists()
    deadline = time.monotonic() + 10  # a holder never recorded exits once its directory is gone
    while processes_mentioning(str(lab_dir)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not processes_mentioning(str(lab_dir))


def test_up_fails_cleanly(lab_dir):
    # h2's overlay workdir on another filesystem: its holder cannot mount /etc and dies
    (lab_dir / "hosts" / "h2").mkdir(parents=True)
    (lab_dir / "hosts" / "h2" / "work").symlink_to("/proc")
    lab = Lab(lab_dir, 3)
    res = lab.up()
    assert res.returncode == 1
    assert "tearing down" in res.stdout
    assert "holder h2 exited" in res.stderr and "mount overlay on /etc" in res.stderr
    assert not lab_dir.exists()
    assert not processes_mentioning(str(lab_dir))


def test_up_50_hosts_is_fast(lab_dir):
    lab = Lab(lab_dir, 50)
    try:
        start = time.monotonic()
        res = lab.up()
        elapsed = time.monotonic() - start
        assert res.returncode == 0, res.stderr
        assert elapsed < 10, f"up --hosts 50 took {elapsed:.1f} s"
        assert "198.18.1.50/16" in lab.exec("h50", "ip", "-o", "addr", "show", "eth0").stdout
    finally:
        assert lab.down().returncode == 0


@pytest.fixture(scope="module")
def ssh_lab(tmp_path_factory):
    yield from build_lab(tmp_path_factory.mktemp("nfl-ssh"), 2, ssh=True)


def test_ssh_mode_ping_from_ctl(ssh_lab, tmp_ansible):
    text = ssh_lab.inventory.read_text(encoding="utf-8")
    assert 'ansible_connection: "ssh"' in text and 'ansible_host: "198.18.1.2"' in text
    ansible = str(BIN / "ansible")
    res = ssh_lab.exec(
        "ctl", ansible, "-i", str(ssh_lab.inventory), "lab", "-m", "ansible.builtin.ping", env=tmp_ansible
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("SUCCESS") == 2
    res = ssh_lab.exec(
        "ctl",
        ansible,
        "-i",
        str(ssh_lab.inventory),
        "h2",
        "-m",
        "ansible.builtin.command",
        "-a",
        "hostname",
        env=tmp_ansible,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "h2" in res.stdout.split(">>", 1)[1]
    # the hosts are not reachable from the machine's own namespace
    assert "198.18" not in subprocess.run(["ip", "route"], capture_output=True, text=True, check=False).stdout
