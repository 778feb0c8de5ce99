# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers for the lab tests: drive tools/netfleet-lab and ansible, and look for leftovers (read-only)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from devenv import BIN, REPO
from netfleet_lab.lab import proc_state

TOOL = REPO / "tools" / "netfleet-lab"

IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="the lab needs root (it creates namespaces); run as root")


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line mentions `text` (read-only check, never used to kill)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if text.encode() in f.read() and proc_state(int(entry)) not in (None, "Z", "X"):
                    found.append(int(entry))
        except OSError:
            continue
    return found


def mount_lines() -> set[str]:
    with open("/proc/self/mounts", encoding="utf-8") as f:
        return set(f)


def root_netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


class Lab:
    """A lab in its own directory, driven through the CLI."""

    def __init__(self, path: Path, hosts: int, ssh: bool = False):
        self.dir = path
        self.hosts = hosts
        self.ssh = ssh
        self.inventory = path / "inventory.yml"

    def tool(self, *args: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
        cmd = [sys.executable, str(TOOL), *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)

    def up(self, hosts: int | None = None, ssh: bool | None = None) -> subprocess.CompletedProcess:
        args = ["up", "--hosts", str(hosts or self.hosts), "--dir", str(self.dir)]
        if self.ssh if ssh is None else ssh:
            args.append("--ssh")
        return self.tool(*args, timeout=300)

    def down(self) -> subprocess.CompletedProcess:
        return self.tool("down", "--dir", str(self.dir))

    def exec(self, host: str, *cmd: str, **kwargs) -> subprocess.CompletedProcess:
        return self.tool("exec", "--dir", str(self.dir), host, "--", *cmd, **kwargs)

    def state(self) -> dict:
        return json.loads((self.dir / "state.json").read_text(encoding="utf-8"))

    def pids(self) -> list[int]:
        return [p for rec in self.state()["holders"].values() for p in (rec["unshare"], rec["pid"])]


def run_ansible(env: dict[str, str], *args: str, tool: str = "ansible", timeout: float = 300):
    cmd = [str(BIN / tool), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False)


def build_lab(path: Path, hosts: int, ssh: bool = False):
    """Generator for fixtures: up, yield, and always down (also when up failed)."""
    lab = Lab(path, hosts, ssh)
    try:
        res = lab.up()
        assert res.returncode == 0, f"netfleet-lab up failed:\n{res.stdout}\n{res.stderr}"
        yield lab
    finally:
        res = lab.down()
        assert res.returncode == 0, f"netfleet-lab down failed:\n{res.stdout}\n{res.stderr}"
        assert not path.exists(), f"{path} still exists after down"
        deadline = time.monotonic() + 10
        while processes_mentioning(str(path)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not processes_mentioning(str(path)), "lab processes left behind"
