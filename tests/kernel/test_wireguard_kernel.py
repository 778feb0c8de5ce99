# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The WireGuard engine (_wireguard.Tunnel, key_state, facts) on real devices, inside the hosts of a 2-host lab of
its own (tools/netfleet-lab: each host has its own netns, /run and /etc, so wireguard-go's /run/wireguard and the
state directory stay in the host).

With no systemd in a lab host, this runs the module's own supervision of wireguard-go (started in a session of its
own, recognised by pid, start time, command line and netns). The kernel path runs only where the kernel has
WireGuard (it is skipped otherwise: this machine's kernel has none).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from devenv import REPO

from ansible_collections.netfleet.overlay.plugins.module_utils import _wireguard

pytestmark = pytest.mark.kernel

TOOL = REPO / "tools" / "netfleet-lab"
PYTHON = REPO / ".venv" / "bin" / "python"
VTEP = {"h1": "198.18.1.1", "h2": "198.18.1.2"}
TUNNEL = {"h1": "10.255.0.1", "h2": "10.255.0.2"}

DRIVER = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.netfleet.overlay.plugins.module_utils import _wireguard as W
from ansible_collections.netfleet.overlay.plugins.module_utils._objects import Handles
args = json.loads(sys.argv[2])
out = {}
try:
    if args["action"] == "key":
        out = W.key_state(rotate=args.get("rotate", False))
    elif args["action"] == "facts":
        out = W.facts()
    else:
        tunnel = W.Tunnel(None, args.get("check", False), [], kernel=args.get("kernel"))
        with Handles() as handles:
            out = tunnel.converge(handles, args["want"])
        out["facts"] = tunnel.facts()
except W.WireGuardError as exc:
    out = {"failed": str(exc), **exc.details}
print(json.dumps(out))
"""

needs = pytest.mark.skipif(
    not (shutil.which("wg") and shutil.which("wireguard-go") and shutil.which("ip")),
    reason="needs wireguard-tools and wireguard-go (make deps)",
)


class WgLab:
    def __init__(self, path: Path):
        self.dir = path / "lab"
        self.driver = path / "drive.py"
        self.driver.write_text(DRIVER, encoding="utf-8")
        self.outputs: list[str] = []  # everything the hosts printed, searched for private keys at the end

    def tool(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=timeout, check=False
        )

    def sh(self, host: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        res = self.tool("exec", "--dir", str(self.dir), host, "--", *cmd)
        self.outputs += [res.stdout, res.stderr]
        if check:
            assert res.returncode == 0, f"{host}: {' '.join(cmd)} failed: {res.stdout}{res.stderr}"
        return res

    def drive(self, host: str, **args) -> dict:
        collections = str(REPO / ".venv" / "collections")
        res = self.sh(host, str(PYTHON), str(self.driver), collections, json.dumps(args))
        return json.loads(res.stdout)

    def want(self, host: str, keys: dict, rotate: bool = False, mtu: int = 1440) -> dict:
        peers = [
            {"host": o, "public_key": keys[o], "endpoint": f"{VTEP[o]}:51820", "address": TUNNEL[o]}
            for o in sorted(VTEP)
            if o != host
        ]
        return {"address": TUNNEL[host], "prefixlen": 16, "port": 51820, "mtu": mtu, "rotate": rotate, "peers": peers}

    def converge(self, host: str, want: dict | None, **extra) -> dict:
        out = self.drive(host, action="converge", want=want, **extra)
        assert "failed" not in out, out
        return out

    def private_keys(self) -> set[str]:
        found = set()
        for host in VTEP:
            for name in ("private.key", "next.key"):
                res = self.sh(host, "cat", f"/run/netfleet-overlay/wireguard/{name}", check=False)
                if res.returncode == 0 and res.stdout.strip():
                    found.add(res.stdout.strip())
        return found

    def ping(self, host: str, target: str, count: int = 3, interval: str = "0.2") -> tuple[int, int]:
        res = self.sh(
            host,
            "ip",
            "netns",
            "exec",
            "ovl-wg",
            "ping",
            "-q",
            "-c",
            str(count),
            "-i",
            interval,
            "-W",
            "1",
            target,
            check=False,
        )
        match = re.search(r"(\d+) packets transmitted, (\d+) received", res.stdout)
        assert match, res.stdout + res.stderr
        return int(match.group(1)), int(match.group(2))


@pytest.fixture
def wglab(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    lab = WgLab(tmp_path)
    try:
        res = lab.tool("up", "--hosts", "2", "--dir", str(lab.dir), timeout=300)
        assert res.returncode == 0, res.stdout + res.stderr
        yield lab
    finally:
        res = lab.tool("down", "--dir", str(lab.dir))
        assert res.returncode == 0, res.stdout + res.stderr


def up_both(lab: WgLab) -> dict:
    keys = {host: lab.drive(host, action="key")["public_key"] for host in VTEP}
    for host in VTEP:
        lab.converge(host, lab.want(host, keys))
    return keys


@needs
def test_userspace_tunnel_pings_is_idempotent_survives_a_killed_daemon_rotates_and_tears_down(wglab):
    lab = wglab
    keys = {host: lab.drive(host, action="key")["public_key"] for host in VTEP}
    predicted = lab.converge("h1", lab.want("h1", keys), check=True)
    assert predicted["changed"] and lab.sh("h1", "ip", "netns", "list").stdout.strip() == ""
    for host in VTEP:
        out = lab.converge(host, lab.want(host, keys))
        assert out["changed"] and out["facts"]["implementation"] == "userspace"
        assert out["facts"]["address"] == TUNNEL[host] and out["facts"]["port"] == 51820
    sent, received = lab.ping("h1", TUNNEL["h2"])
    assert received == sent
    # the UDP socket is wireguard-go's, on the underlay of the host netns; wg-overlay is only in ovl-wg
    assert ":51820" in lab.sh("h1", "ss", "-uln").stdout
    assert "wg-overlay" not in lab.sh("h1", "ip", "-br", "link").stdout
    link = lab.sh("h1", "ip", "-n", "ovl-wg", "-d", "link", "show", "wg-overlay").stdout
    assert "mtu 1440" in link and "tun" in link
    modes = lab.sh(
        "h1", "stat", "-c", "%a %n", "/run/netfleet-overlay/wireguard", "/run/netfleet-overlay/wireguard/private.key"
    ).stdout.split()
    assert modes[0::2] == ["700", "600"]

    # idempotence
    for host in VTEP:
        again = lab.converge(host, lab.want(host, keys))
        assert again["changed"] is False and again["commands"] == [], again

    # a killed wireguard-go comes back on the next run
    pid = lab.sh("h1", "cat", "/run/netfleet-overlay/wireguard/wireguard-go.pid").stdout.split()[0]
    assert "wireguard-go" in lab.sh("h1", "cat", f"/proc/{pid}/cmdline").stdout
    lab.sh("h1", "kill", "-9", pid)
    deadline = time.monotonic() + 5
    while "wg-overlay" in lab.sh("h1", "ip", "-n", "ovl-wg", "-br", "link").stdout and time.monotonic() < deadline:
        time.sleep(0.05)
    back = lab.converge("h1", lab.want("h1", keys))
    assert back["changed"] and any("wireguard-go -f wg-overlay" in c for c in back["commands"])
    assert lab.ping("h1", TUNNEL["h2"])[1] == 3
    assert lab.converge("h1", lab.want("h1", keys))["changed"] is False

    # rotation under a 100/s ping: both hosts stage, then switch one after the other
    nxt = {host: lab.drive(host, action="key", rotate=True)["public_key_next"] for host in VTEP}
    assert all(nxt.values()) and nxt != keys
    pinger = subprocess.Popen(
        [
            sys.executable,
            str(TOOL),
            "exec",
            "--dir",
            str(lab.dir),
            "h1",
            "--",
            "ip",
            "netns",
            "exec",
            "ovl-wg",
            "ping",
            "-q",
            "-c",
            "400",
            "-i",
            "0.01",
            "-W",
            "1",
            TUNNEL["h2"],
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.5)
        for host in VTEP:
            rotated = lab.converge(host, lab.want(host, nxt, rotate=True))
            assert "rotated" in rotated["summary"] and rotated["facts"]["public_key"] == nxt[host]
            assert rotated["facts"]["public_key_next"] is None
    finally:
        out, err = pinger.communicate(timeout=60)
    lab.outputs += [out, err]
    match = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert match, out + err
    lost = int(match.group(1)) - int(match.group(2))
    print(f"rotation under a 100/s ping: {lost} of {match.group(1)} lost")
    assert lost <= int(match.group(1)) // 100, f"rotation lost {lost} of {match.group(1)} (more than 1%)"
    for host in VTEP:
        assert lab.converge(host, lab.want(host, nxt))["changed"] is False

    # no private key in anything the hosts printed
    printed = "\n".join(lab.outputs)
    secrets = lab.private_keys()
    assert len(secrets) == 2
    assert not any(secret in printed for secret in secrets)

    # teardown: no interface, netns, daemon, key file
    for host in VTEP:
        pid = lab.sh(host, "cat", "/run/netfleet-overlay/wireguard/wireguard-go.pid").stdout.split()[0]
        down = lab.converge(host, None)
        assert down["changed"] and "ip netns del ovl-wg" in down["commands"]
        assert lab.sh(host, "ip", "netns", "list").stdout.strip() == ""
        assert "wg-overlay" not in lab.sh(host, "ip", "-br", "link").stdout
        assert lab.sh(host, "test", "-e", f"/proc/{pid}", check=False).returncode != 0
        assert lab.sh(host, "ls", "/run/netfleet-overlay").stdout.strip() == ""
        assert lab.converge(host, None)["changed"] is False


@needs
def test_an_mtu_and_peer_change_keep_the_tunnel_up(wglab):
    lab = wglab
    keys = up_both(lab)
    changed = lab.converge("h1", lab.want("h1", keys, mtu=1400))
    assert changed["commands"] == ["ip -n ovl-wg link set wg-overlay mtu 1400"]
    assert lab.ping("h1", TUNNEL["h2"])[1] == 3
    gone = lab.converge("h1", dict(lab.want("h1", keys, mtu=1400), peers=[]))
    assert gone["commands"] == [f"wg set wg-overlay peer {keys['h2']} remove"]
    assert gone["facts"]["peers"] == []
    assert lab.converge("h1", lab.want("h1", keys, mtu=1400))["facts"]["peers"][0]["public_key"] == keys["h2"]
    assert lab.ping("h1", TUNNEL["h2"])[1] == 3
    for host in VTEP:
        lab.converge(host, None)


@needs
@pytest.mark.skipif(not _wireguard.kernel_available(), reason="this kernel has no WireGuard")
def test_kernel_tunnel_pings_and_tears_down(wglab):
    lab = wglab
    keys = {host: lab.drive(host, action="key")["public_key"] for host in VTEP}
    for host in VTEP:
        out = lab.converge(host, lab.want(host, keys), kernel=True)
        assert out["facts"]["implementation"] == "kernel"
    assert lab.ping("h1", TUNNEL["h2"])[1] == 3
    for host in VTEP:
        assert lab.converge(host, lab.want(host, keys), kernel=True)["changed"] is False
        lab.converge(host, None, kernel=True)
        assert lab.sh(host, "ip", "netns", "list").stdout.strip() == ""
