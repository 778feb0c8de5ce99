# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Concurrent runs on one fleet: the per-host lock (flock on /run/netfleet-overlay/host.lock) serialises them.

Two ``site.yml`` runs started at the same moment on a fresh lab both succeed and leave exactly the demo fleet;
a run that finds the lock held waits for it, and fails with a message naming the lock after
``overlay_lock_timeout``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from devenv import ansible_env
from lab_helpers import BIN, TOOL, needs_root
from reliability_helpers import CHANGED_RE, PLAYBOOKS, RECAP_RE, demo_lab
from support.demo_fleet import LAB_VARS, VTEP
from test_role import TableFleet, assert_tables

pytestmark = [pytest.mark.lab, needs_root]

LOCK = "/run/netfleet-overlay/host.lock"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    yield from demo_lab(tmp_path_factory, "conc", TableFleet)


def start_site(fleet, name: str, *args: str) -> subprocess.Popen:
    env = ansible_env(fleet.tmp / name)  # own ANSIBLE_HOME and local temp per run
    cmd = [str(BIN / "ansible-playbook"), "-i", str(fleet.lab.inventory), "-i", str(LAB_VARS)]
    cmd += [str(PLAYBOOKS / "site.yml"), *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str, dict]:
    out, _err = proc.communicate(timeout=timeout)
    recap = {
        m["host"]: {k: int(m[k]) for k in ("ok", "changed", "unreachable", "failed")} for m in RECAP_RE.finditer(out)
    }
    return proc.returncode, out, recap


def allowlists(fleet) -> dict:
    found = {}
    for host in VTEP:
        res = fleet.lab.exec(host, "nft", "-j", "list", "set", "inet", "netfleet_overlay", "vteps")
        assert res.returncode == 0, res.stderr
        found[host] = sorted(json.loads(res.stdout)["nftables"][1]["set"].get("elem", []))
    return found


class HeldLock:
    """Holds a host's converge lock from a shell (util-linux flock) until released; no process is killed."""

    def __init__(self, fleet, host: str):
        cmd = [sys.executable, str(TOOL), "exec", "--dir", str(fleet.lab.dir), host, "--"]
        # the state directory exists once any module has run; make it as the collection would (root, 0700)
        hold = f"mkdir -p -m 0700 /run/netfleet-overlay && exec flock {LOCK} sh -c 'echo held; cat >/dev/null'"
        cmd += ["sh", "-c", hold]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "held"

    def release(self) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()  # cat sees EOF, sh and flock exit, the kernel drops the lock
        assert self.proc.wait(timeout=30) == 0


def test_two_site_runs_at_the_same_moment(fleet):
    start = time.monotonic()
    procs = [start_site(fleet, "run-a"), start_site(fleet, "run-b")]
    results = [finish(proc) for proc in procs]
    elapsed = time.monotonic() - start
    for rc, out, recap in results:
        assert rc == 0, out[-4000:]
        assert set(recap) == {"h1", "h2", "h3"} and all(c["failed"] == 0 for c in recap.values())
    # every host was built exactly once: one of the two runs found it done (it waited for the other's lock)
    for host in VTEP:
        assert sorted(recap[host]["changed"] for _rc, _out, recap in results) == [0, 1], (host, elapsed)
    assert_tables(fleet)
    assert allowlists(fleet) == {h: sorted(VTEP[o] for o in VTEP if o != h) for h in VTEP}
    res, _recap, _changed = fleet.play("verify.yml")
    assert res.returncode == 0, res.stdout[-4000:]
    assert "7 endpoints, 42 pings: all as expected" in res.stdout
    _res, recap, _changed = fleet.converge()
    assert all(counts["changed"] == 0 for counts in recap.values())


def test_a_held_lock_times_out_with_a_clear_message(fleet):
    fleet.converge()
    held = HeldLock(fleet, "h1")
    try:
        rc, out, recap = finish(start_site(fleet, "run-timeout", "-e", "overlay_lock_timeout=2"))
    finally:
        held.release()
    assert rc == 2, out[-4000:]
    assert recap["h1"]["failed"] == 1 and recap["h2"]["failed"] == recap["h3"]["failed"] == 0
    assert f"another netfleet.overlay run has held the host lock {LOCK} for more than 2 s" in out
    assert "raise lock_timeout (overlay_lock_timeout in the role)" in out


def test_a_run_waits_for_the_lock_and_then_converges(fleet):
    fleet.converge()
    fleet.sh("h2", "ip -n ovl-256 neigh del 10.213.0.2 dev vxlan0")  # something for the waiting run to repair
    held = HeldLock(fleet, "h2")
    try:
        proc = start_site(fleet, "run-wait")
        time.sleep(15)  # longer than a whole run without the lock: it must still be waiting on h2
        assert proc.poll() is None
        assert fleet.sh("h2", "ip -n ovl-256 neigh show 10.213.0.2 dev vxlan0").strip() == ""  # not repaired yet
    finally:
        held.release()
    rc, out, _recap = finish(proc)
    assert rc == 0, out[-4000:]
    assert sorted(CHANGED_RE.findall(out)) == ["h2"]
    assert_tables(fleet)
