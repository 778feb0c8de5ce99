# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Faults on the converged demo fleet: a table apply killed with SIGKILL half-way, a host lost during a run, a
host rebooted. No remote entry may be lost on the hosts that stay up, and one run converges after each fault.

* SIGKILL: the fdb module writes a 20,000-entry table (``state: overridden``) into a vxlan device in a throwaway
  netns of h1, and is killed (its whole process group, SIGKILL) once ``bridge monitor fdb`` has seen the first
  entries arrive. That must leave between 1 and 19,999 entries; the next run (through Ansible) must end with
  exactly the 20,000 wanted entries, none twice and no strays, and the run after it must change nothing.
* Unreachable: h3 is powered off (``netfleet-lab stop``) after the facts of a run were read and before its
  converge step, in a run that also adds an endpoint on h1. h1 and h2 converge and keep every entry of h3's
  endpoints; the run reports h3 unreachable. After ``netfleet-lab start h3`` (an empty host), one run rebuilds
  h3 and changes nothing on h1 and h2.
* Reboot: ``netfleet-lab reboot h2`` (its holder restarted empty, same addresses). The next run rebuilds h2 and
  changes nothing on h1 and h3: h2's endpoints get their old addresses back (IPAM hands out the lowest free
  address, which is theirs, since nothing else took it), so the others' tables stay as they are.
Last, teardown.yml must bring every host back to its snapshot from before the first site.yml (for a restarted
host: from right after its restart).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest
from lab_helpers import REPO, TOOL, needs_root, run_ansible
from reliability_helpers import (
    CHANGED_RE,
    HOSTS,
    PRISTINE_CHECK,
    RECAP_RE,
    check_teardown_leaves_no_residue,
    lab_fleet,
    snapshot_diff,
)
from support.demo_fleet import DEMO, VNI, VTEP, mac_of

pytestmark = [pytest.mark.lab, needs_root]

H1_WITH_EXTRA = """
overlay_endpoints:
  - {name: hosta, network: overlay_network}
  - {name: web1, network: backend}
  - {name: extra1, network: overlay_network}
"""
WITH_EXTRA = {**DEMO, ("h1", "extra1"): ("overlay_network", "10.213.0.6")}

ENTRIES = 20000
KILL_NS, KILL_DEV = "killtest", "vxk"


# What each fault case checks, as its results record says: case -> (what was done, the checks it passed)
FAULTS = {
    "sigkill-mid-apply": (
        "fdb module (state overridden, 20000 entries) killed with SIGKILL mid-way",
        [
            "the killed run left 1..19999 of 20000 entries",
            "the next run ends with exactly the 20000 wanted entries (none twice, no strays)",
            "the run after that reports changed=false",
        ],
    ),
    "host-unreachable-during-run": (
        "h3 powered off (netfleet-lab stop) between facts and converge, while h1 gains an endpoint",
        [
            "the run reports h3 unreachable (rc 4, recap unreachable=1) and converges h1, h2",
            "h1 and h2 keep every entry of h3's endpoints",
            "after h3 returns (empty), one run changes h3 only and leaves h1, h2 untouched",
            "the run after that: changed=0; verify.yml: 8 endpoints, 56 pings as expected",
        ],
    ),
    "host-rebooted": (
        "h2 rebooted (netfleet-lab reboot: holder restarted empty, same addresses)",
        [
            "the next run: changed on h2 only; h1, h3 snapshots identical before and after",
            "every host's tables exactly as expected; the run after that: changed=0; verify.yml passes",
        ],
    ),
}


def rebuilt_alone(fleet, host: str, before: dict, fleet_map: dict, **play) -> int:
    """One site.yml run changes ``host`` only, leaves the other hosts as ``before`` shows them, and every table is
    as ``fleet_map`` wants; returns how many entries were lost."""
    res, recap, changed = fleet.play("site.yml", **play)
    assert res.returncode == 0, res.stdout[-4000:]
    assert changed == [host], (changed, recap)
    after = fleet.snapshot()
    assert all(after[h] == before[h] for h in HOSTS if h != host), snapshot_diff(before, after)
    problems, lost = table_problems(after, fleet_map)
    assert not problems, problems
    return lost


def passed(fleet, case: str, started: float, **detail) -> None:
    """Record a fault case whose assertions all held."""
    what, checks = FAULTS[case]
    fleet.results.add("fault", case, checks, True, time.monotonic() - started, what=what, **detail)


def expected_entries(host: str, fleet_map: dict) -> set[tuple]:
    """Every remote entry that ``host`` must hold: (netns, 'fdb', mac, dst) and (netns, 'neigh', ip, mac)."""
    mine = {net for (owner, _name), (net, _ip) in fleet_map.items() if owner == host}
    out = set()
    for (owner, _name), (net, ip) in fleet_map.items():
        if owner != host and net in mine:
            ns = f"ovl-{VNI[net]}"
            out |= {(ns, "fdb", mac_of(ip), VTEP[owner]), (ns, "neigh", ip, mac_of(ip))}
    return out


def actual_entries(snap_host: dict) -> set[tuple]:
    """The vxlan0 FDB entries with a dst and the permanent neighbours of vxlan0, in every overlay netns."""
    out = set()
    for ns, sections in snap_host.items():
        if not ns.startswith("ovl-"):
            continue
        out |= {(ns, "fdb", e["mac"], e["dst"]) for e in sections["fdb"] if e.get("ifname") == "vxlan0" and "dst" in e}
        out |= {(ns, "neigh", e["dst"], e.get("lladdr")) for e in sections["neigh"] if e.get("dev") == "vxlan0"}
    return out


def table_problems(snap: dict, fleet_map: dict, hosts=HOSTS) -> tuple[list[str], int]:
    """What differs from the expected tables on ``hosts``, and how many expected entries are missing (lost)."""
    problems, lost = [], 0
    for host in hosts:
        want, have = expected_entries(host, fleet_map), actual_entries(snap[host])
        lost += len(want - have)
        if want != have:
            problems.append(f"{host}: missing {sorted(want - have)[:5]}, extra {sorted(have - want)[:5]}")
    return problems, lost


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    yield from lab_fleet(tmp_path_factory, "faults")


# --- SIGKILL in the middle of a 20k-entry table ----------------------------------------------------------------


def _wanted_fdb() -> list[dict]:
    return [
        {"mac": f"02:00:00:{i >> 16 & 0xFF:02x}:{i >> 8 & 0xFF:02x}:{i & 0xFF:02x}", "dst": f"198.18.2.{1 + i % 250}"}
        for i in range(ENTRIES)
    ]


def _kill_fdb(fleet) -> list[dict]:
    """The vxlan device's own FDB entries with a dst, straight from the kernel."""
    out = fleet.sh("h1", f"bridge -j -n {KILL_NS} fdb show dev {KILL_DEV}")
    return [{"mac": e["mac"], "dst": e["dst"]} for e in json.loads(out or "[]") if "dst" in e]


def _in_h1(fleet, *argv: str) -> subprocess.Popen:
    """Start a command inside h1 in a process group of its own (so the whole group can be killed)."""
    cmd = [sys.executable, str(TOOL), "exec", "--dir", str(fleet.lab.dir), "h1", "--", *argv]
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True, bufsize=1
    )


def _killpg(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # our own process group: pgid == the pid we started
    proc.wait(timeout=30)


def _attempt(fleet, args_file, threshold: int) -> dict:
    """One module run, killed after ``threshold`` FDB events: how many entries it left behind."""
    fleet.sh(
        "h1",
        f"ip -n {KILL_NS} link del {KILL_DEV} 2>/dev/null;"
        f" ip -n {KILL_NS} link add {KILL_DEV} type vxlan id 4242 dstport 4790 nolearning"
        f" && ip -n {KILL_NS} link set {KILL_DEV} up",
    )
    monitor = _in_h1(fleet, "bridge", "-n", KILL_NS, "monitor", "fdb")
    events: queue.Queue = queue.Queue()
    # only the module's own entries count (02:00:00:...), not what the kernel adds for the device itself
    threading.Thread(
        target=lambda: [events.put(line) for line in monitor.stdout if line.startswith("02:00:00:")], daemon=True
    ).start()
    time.sleep(0.5)  # let the monitor subscribe
    python = str(REPO / ".venv" / "bin" / "python")
    env_path = f"PYTHONPATH={REPO / '.venv' / 'collections'}"
    module = _in_h1(fleet, "env", env_path, python, str(REPO / "plugins" / "modules" / "fdb.py"), str(args_file))
    seen, started = 0, time.monotonic()
    while seen < threshold and module.poll() is None and time.monotonic() - started < 120:
        with contextlib.suppress(queue.Empty):
            events.get(timeout=0.05)
            seen += 1
    killed_at = time.monotonic() - started
    finished = module.poll() is not None
    _killpg(module)
    _killpg(monitor)
    time.sleep(0.3)
    count = len(_kill_fdb(fleet))
    time.sleep(0.3)
    assert len(_kill_fdb(fleet)) == count, "entries still arriving after the kill: the module survived"
    return {
        "threshold": threshold,
        "events": seen,
        "killed_after_s": round(killed_at, 2),
        "left": count,
        "finished": finished,
    }


def test_table_apply_killed_mid_way_then_converges(fleet, tmp_path):
    started = time.monotonic()
    wanted = _wanted_fdb()
    args = {"netns": KILL_NS, "dev": KILL_DEV, "state": "overridden", "entries": wanted}
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}), encoding="utf-8")
    entries_file = tmp_path / "entries.json"
    entries_file.write_text(json.dumps(wanted), encoding="utf-8")
    playbook = tmp_path / "fdb.yml"
    playbook.write_text(
        f"""- name: The 20k-entry table
  hosts: h1
  gather_facts: false
  tasks:
    - name: Apply it
      netfleet.overlay.fdb:
        netns: {KILL_NS}
        dev: {KILL_DEV}
        state: overridden
        entries: "{{{{ lookup('ansible.builtin.file', '{entries_file}') | from_json }}}}"
""",
        encoding="utf-8",
    )
    fleet.sh("h1", f"ip netns add {KILL_NS}")
    attempts = []
    try:
        for threshold in (2000, 200, 20, 1):
            attempts.append(_attempt(fleet, args_file, threshold))
            if 0 < attempts[-1]["left"] < ENTRIES:
                break
        caught = attempts[-1]
        assert 0 < caught["left"] < ENTRIES, f"never caught the apply mid-way: {attempts}"

        # the next run (through Ansible) converges: exactly the wanted entries, none twice, no strays
        res = run_ansible(fleet.env, "-i", str(fleet.lab.inventory), str(playbook), tool="ansible-playbook")
        assert res.returncode == 0, res.stdout[-3000:]
        assert "changed: [h1]" in res.stdout
        have = _kill_fdb(fleet)
        macs = [e["mac"] for e in have]
        duplicates = len(macs) - len(set(macs))
        want = {(e["mac"], e["dst"]) for e in wanted}
        got = {(e["mac"], e["dst"]) for e in have}
        lost, strays = len(want - got), len(got - want)
        assert (len(have), duplicates, lost, strays) == (ENTRIES, 0, 0, 0)
        res = run_ansible(fleet.env, "-i", str(fleet.lab.inventory), str(playbook), tool="ansible-playbook")
        assert res.returncode == 0 and "ok: [h1]" in res.stdout and "changed: [h1]" not in res.stdout, res.stdout
    finally:
        fleet.sh("h1", f"ip netns del {KILL_NS}", check=False)
    passed(
        fleet,
        "sigkill-mid-apply",
        started,
        attempts=attempts,
        left_after_kill=caught["left"],
        entries_lost=lost,
        duplicates=duplicates,
        strays=strays,
    )


# --- a host lost during a run ------------------------------------------------------------------------------------


def test_host_lost_during_a_run_keeps_its_entries_and_rejoins(fleet):
    started = time.monotonic()
    fleet.converge()
    extra = fleet.tmp / "extra1" / "host_vars"
    extra.mkdir(parents=True)
    (extra / "h1.yml").write_text(H1_WITH_EXTRA, encoding="utf-8")
    inventories = ["-i", str(fleet.lab.inventory), "-i", str(REPO / "inventories" / "lab"), "-i", str(extra.parent)]
    cmd = [str(REPO / ".venv" / "bin" / "ansible-playbook"), *inventories, str(REPO / "playbooks" / "site.yml")]
    proc = subprocess.Popen(
        cmd, env=fleet.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    lines, stopped = [], False
    for line in proc.stdout:
        lines.append(line)
        if not stopped and "TASK [netfleet.overlay.overlay : Install what the host lacks" in line:
            # every host's facts are read: hold the controller, power h3 off, let it go on
            os.killpg(proc.pid, signal.SIGSTOP)
            try:
                res = fleet.lab.tool("stop", "--dir", str(fleet.lab.dir), "h3")
            finally:
                os.killpg(proc.pid, signal.SIGCONT)
            assert res.returncode == 0, res.stderr
            stopped = True
    proc.wait(timeout=300)
    out = "".join(lines)
    assert stopped, out[-4000:]
    recap = {m["host"]: int(m["unreachable"]) for m in RECAP_RE.finditer(out)}
    assert proc.returncode == 4, out[-4000:]  # a host was unreachable
    assert recap == {"h1": 0, "h2": 0, "h3": 1}, out[-4000:]
    assert "nsenter: pidfile" in out and "UNREACHABLE" in out
    assert sorted(CHANGED_RE.findall(out)) == ["h1", "h2"]
    during = fleet.snapshot(("h1", "h2"))
    problems, lost_during = table_problems(during, WITH_EXTRA, ("h1", "h2"))
    assert not problems, problems

    # h3 comes back empty; one run rebuilds it and changes nothing on h1 and h2
    res = fleet.lab.tool("start", "--dir", str(fleet.lab.dir), "h3")
    assert res.returncode == 0, res.stderr
    fleet.pristine["h3"] = fleet.snapshot(("h3",))["h3"]
    lost_after = rebuilt_alone(fleet, "h3", during, WITH_EXTRA, overrides={"h1": H1_WITH_EXTRA})
    res, recap, changed = fleet.play("site.yml", overrides={"h1": H1_WITH_EXTRA})
    assert res.returncode == 0 and changed == [], (changed, recap)
    res = fleet.play("verify.yml", overrides={"h1": H1_WITH_EXTRA})[0]
    assert res.returncode == 0, res.stdout[-4000:]
    assert "8 endpoints, 56 pings: all as expected" in res.stdout
    passed(fleet, "host-unreachable-during-run", started, entries_lost=lost_during + lost_after)


# --- a host rebooted ---------------------------------------------------------------------------------------------


def test_rebooted_host_is_rebuilt_and_nothing_else_changes(fleet):
    started = time.monotonic()
    fleet.converge()  # back to the demo fleet (drops extra1)
    recap, changed = fleet.converge()[1:]
    assert changed == [], recap
    before = fleet.snapshot()
    res = fleet.lab.tool("reboot", "--dir", str(fleet.lab.dir), "h2")
    assert res.returncode == 0, res.stderr
    rebooted = fleet.snapshot(("h2",))["h2"]
    assert list(rebooted) == ["-"], "h2 is not empty after the reboot"
    fleet.pristine["h2"] = rebooted
    problems, lost_on_others = table_problems(fleet.snapshot(("h1", "h3")), DEMO, ("h1", "h3"))
    assert not problems, problems

    lost = rebuilt_alone(fleet, "h2", before, DEMO)
    recap, changed = fleet.converge()[1:]
    assert changed == [], recap
    res = fleet.play("verify.yml")[0]
    assert res.returncode == 0, res.stdout[-4000:]
    passed(fleet, "host-rebooted", started, entries_lost=lost_on_others + lost)


def test_teardown_leaves_no_residue(fleet):
    check_teardown_leaves_no_residue(fleet, "teardown-after-faults", PRISTINE_CHECK + " (or its restart)")
