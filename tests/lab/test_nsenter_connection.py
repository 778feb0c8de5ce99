# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The connection plugin netfleet.overlay.nsenter, driven by the real ansible CLI against a lab."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import uuid

import pytest
from lab_helpers import needs_root, run_ansible

pytestmark = [pytest.mark.lab]


def test_ansible_doc_renders(tmp_ansible):
    res = run_ansible(tmp_ansible, "-t", "connection", "netfleet.overlay.nsenter", tool="ansible-doc")
    assert res.returncode == 0, res.stderr
    for word in ("ansible_nsenter_pidfile", "ansible_nsenter_pid", "pipelining", "never falls back to PID 1"):
        assert word in res.stdout


@needs_root
def test_ping(lab3, tmp_ansible):
    res = run_ansible(tmp_ansible, "-i", str(lab3.inventory), "lab", "-m", "ansible.builtin.ping", "-f", "3")
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("SUCCESS") == 3


@needs_root
def test_setup_reports_each_hosts_own_facts(lab3, tmp_ansible, tmp_path):
    tree = tmp_path / "tree"
    args = ["-i", str(lab3.inventory), "lab", "-m", "ansible.builtin.setup", "-a", "gather_subset=!all,network"]
    res = run_ansible(tmp_ansible, *args, "--tree", str(tree))
    assert res.returncode == 0, res.stdout + res.stderr
    for k in (1, 2, 3):
        facts = json.loads((tree / f"h{k}").read_text())["ansible_facts"]
        assert facts["ansible_hostname"] == f"h{k}"
        assert facts["ansible_eth0"]["ipv4"]["address"] == f"198.18.1.{k}"
        assert facts["ansible_default_ipv4"]["address"] == f"198.18.1.{k}"
        assert sorted(facts["ansible_interfaces"]) == ["eth0", "lo"]


@needs_root
def test_copy_and_fetch_stream_into_the_hosts_mount_namespace(lab3, tmp_ansible, tmp_path):
    blob = tmp_path / "blob"
    blob.write_bytes(os.urandom(256 * 1024))
    digest = hashlib.sha256(blob.read_bytes()).hexdigest()
    dest = f"/etc/nfltest-{uuid.uuid4().hex[:8]}"  # /etc is the host's own overlay
    inv = ["-i", str(lab3.inventory)]
    try:
        res = run_ansible(tmp_ansible, *inv, "h1", "-m", "ansible.builtin.copy", "-a", f"src={blob} dest={dest}")
        assert res.returncode == 0, res.stdout + res.stderr
        assert not os.path.exists(dest)  # not on the controller
        assert lab3.exec("h2", "test", "-e", dest).returncode == 1  # not in another host
        assert lab3.exec("h1", "sha256sum", dest).stdout.split()[0] == digest
        out = tmp_path / "fetched"
        res = run_ansible(tmp_ansible, *inv, "h1", "-m", "ansible.builtin.fetch", "-a", f"src={dest} dest={out}/")
        assert res.returncode == 0, res.stdout + res.stderr
        assert hashlib.sha256((out / "h1" / dest.lstrip("/")).read_bytes()).hexdigest() == digest
        # without pipelining the module itself travels through put_file too
        args = ["-m", "ansible.builtin.stat", "-a", f"path={dest} checksum_algorithm=sha256"]
        res = run_ansible(tmp_ansible, *inv, "h1", *args, "-e", "ansible_pipelining=false")
        assert res.returncode == 0, res.stdout + res.stderr
        assert digest in res.stdout
    finally:
        lab3.exec("h1", "rm", "-f", dest)


@needs_root
def test_refusals_are_unreachable(tmp_ansible, tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()  # reaped: its pid is no longer a process
    hosts = {
        "missing": ("ansible_nsenter_pidfile", str(tmp_path / "nope.pid"), "does not exist"),
        "controller": ("ansible_nsenter_pid", str(os.getpid()), "shares the controller's own mnt, uts, ipc, net, pid"),
        "dead": ("ansible_nsenter_pid", str(dead.pid), "process is not running"),
        "none": (None, None, "there is no default"),
    }
    lines = [
        "bad:",
        "  vars:",
        "    ansible_connection: netfleet.overlay.nsenter",
        "  hosts:",
    ]
    for name, (var, value, _unused) in hosts.items():
        lines.append(f"    {name}: " + (f"{{{var}: {json.dumps(value)}}}" if var else "{}"))
    inventory = tmp_path / "bad.yml"
    inventory.write_text("\n".join(lines) + "\n")
    res = run_ansible(tmp_ansible, "-i", str(inventory), "bad", "-m", "ansible.builtin.ping")
    assert res.returncode == 4, res.stdout + res.stderr  # 4: some hosts unreachable
    for name, (_unused, _unused2, message) in hosts.items():
        block = res.stdout.split(f"{name} | ", 1)[1].split("\n}", 1)[0]
        assert block.startswith("UNREACHABLE!"), block
        assert message in block, block
