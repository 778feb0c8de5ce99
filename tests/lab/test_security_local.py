# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 12, findings 3, 4 and 5: each attack tried on a lab, and shown to get nowhere.

- the host lock: a symlink planted at the old (/run/lock) or the new lock path is never followed, and a user
  other than root can neither block a converge nor pre-create the state directory;
- the nsenter connection and ``netfleet-lab exec``: a reused pid, an unprivileged user's ``unshare -Urmn``
  sandbox, a process that shares the controller's mount namespace and a bare-pid pidfile are refused, each with
  its reason;
- scope IDs are refused, and returned commands are shell-quoted.

Every attempt is counted; tests/output/reliability/security.json records the attempts tried and the ones that got
through (which must be 0), for docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
import uuid

import pytest
from devenv import ansible_env
from lab_helpers import TOOL, build_lab, needs_root, run_ansible
from reliability_helpers import Results

pytestmark = [pytest.mark.lab, needs_root]

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
STATE_DIR = "/run/netfleet-overlay"
LOCK = f"{STATE_DIR}/host.lock"
OLD_LOCK = "/run/lock/netfleet-overlay.lock"


class Tally:
    """Attempts of one case: each one either got through (a failure) or was stopped, with what stopped it."""

    def __init__(self, results: Results, case: str):
        self.results, self.case = results, case
        self.tried, self.through, self.checks = 0, [], []
        self.started = time.monotonic()

    def attempt(self, what: str, stopped: bool, evidence: str) -> None:
        self.tried += 1
        self.checks.append(what)
        if not stopped:
            self.through.append(f"{what}: {evidence[-800:]}")

    def finish(self) -> None:
        self.results.add(
            "security",
            self.case,
            self.checks,
            not self.through,
            time.monotonic() - self.started,
            tried=self.tried,
            got_through=len(self.through),
        )
        assert not self.through, "\n".join(self.through)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nfl-sec")
    results = Results("security")
    for lab in build_lab(tmp / "lab", 2):
        yield {"lab": lab, "env": ansible_env(tmp), "tmp": tmp, "results": results}
    results.write()


def sh(lab, host: str, script: str) -> subprocess.CompletedProcess:
    return lab.exec(host, "sh", "-c", script)


def module(env, host: str, name: str, args: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    inventory = str(env["lab"].inventory)
    return run_ansible(env["env"], "-i", inventory, host, "-m", name, "-a", json.dumps(args), timeout=timeout)


def netns_cycle(env, host: str, timeout: float = 120) -> tuple[bool, str]:
    """A writing module run (netns created, then removed): True when both succeeded."""
    name = f"nfsec-{uuid.uuid4().hex[:6]}"
    out = ""
    for state in ("present", "absent"):
        res = module(env, host, "netfleet.overlay.netns", {"name": name, "state": state}, timeout)
        out += res.stdout + res.stderr
        if res.returncode != 0:
            return False, out
    return True, out


# --- finding 3: the host lock ------------------------------------------------------------------------------------


def test_a_non_root_user_cannot_pre_create_the_state_directory(env):
    """On a host where no module has run yet, the state directory does not exist: nobody cannot make it."""
    lab, tally = env["lab"], Tally(env["results"], "host lock: a non-root user pre-creates the state directory")
    assert sh(lab, "h2", f"test -e {STATE_DIR}").returncode == 1, "h2 must be fresh for this test"
    res = lab.exec("h2", *NOBODY, "mkdir", "-m", "0777", STATE_DIR)
    tally.attempt(f"nobody: mkdir {STATE_DIR}", res.returncode != 0 and "Permission denied" in res.stderr, res.stderr)
    ok, out = netns_cycle(env, "h2")
    mode = sh(lab, "h2", f"stat -c '%U %a' {STATE_DIR}").stdout.strip()
    tally.attempt("a converge afterwards: state directory is root's, mode 0700", ok and mode == "root 700", out + mode)
    tally.finish()


def test_a_symlink_at_the_old_or_new_lock_path_is_not_followed(env):
    lab, tally = env["lab"], Tally(env["results"], "host lock: a symlink planted at a lock path")
    victim = f"/run/nfsec-victim-{uuid.uuid4().hex[:6]}"  # the host's own /run (a hard link needs the same fs)
    sh(lab, "h1", f"printf 'precious\\n' > {victim}; rm -f {OLD_LOCK}; ln -s {victim} {OLD_LOCK}")
    # /run/lock is world-writable: anyone could have planted this link
    ok, out = netns_cycle(env, "h1")
    content = sh(lab, "h1", f"cat {victim}").stdout
    tally.attempt(f"symlink {OLD_LOCK} -> {victim}", ok and content == "precious\n", out + content)

    # the new path sits in a root-only directory; even a link planted there (by root) is refused, never followed
    sh(lab, "h1", f"rm -f {LOCK}; ln -s {victim} {LOCK}")
    res = module(env, "h1", "netfleet.overlay.netns", {"name": "nfsec-never", "state": "present"})
    content = sh(lab, "h1", f"cat {victim}").stdout
    refused = res.returncode != 0 and f"cannot take the host lock {LOCK}" in res.stdout and "remove it" in res.stdout
    tally.attempt(f"symlink {LOCK} -> {victim}", refused and content == "precious\n", res.stdout + content)
    absent = "nfsec-never" not in sh(lab, "h1", "ip netns list").stdout
    tally.attempt("nothing was written while the lock was unsafe", absent, "netns nfsec-never was created")

    # a hard link to a root file (planted by root) is refused as well: one link only
    sh(lab, "h1", f"rm -f {LOCK}; ln {victim} {LOCK}")
    res = module(env, "h1", "netfleet.overlay.netns", {"name": "nfsec-never", "state": "present"})
    content = sh(lab, "h1", f"cat {victim}").stdout
    refused = res.returncode != 0 and "one link owned by root" in res.stdout
    tally.attempt(f"hard link {LOCK} = {victim}", refused and content == "precious\n", res.stdout + content)
    sh(lab, "h1", f"rm -f {LOCK} {OLD_LOCK} {victim}")
    tally.finish()


def test_a_non_root_user_cannot_block_a_converge(env):
    lab, tally = env["lab"], Tally(env["results"], "host lock: a non-root user holds the lock")
    netns_cycle(env, "h1")  # the state directory and the lock file exist
    # 1. the lock file itself: nobody cannot even open it
    res = lab.exec("h1", *NOBODY, "flock", "-n", LOCK, "true")
    tally.attempt(f"nobody: flock {LOCK}", res.returncode != 0 and "Permission denied" in res.stderr, res.stderr)
    # 2. the old, world-writable path: nobody holds it for a minute; the converge does not wait for it
    cmd = [str(TOOL), "exec", "--dir", str(lab.dir), "h1", "--", "sh", "-c"]
    cmd += [f"rm -f {OLD_LOCK}; exec {shlex.join(NOBODY)} flock {OLD_LOCK} sh -c 'echo held; cat >/dev/null'"]
    holder = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        ok, out = netns_cycle(env, "h1", timeout=240)
        took = time.monotonic() - started
        tally.attempt(f"nobody holds {OLD_LOCK} during a converge", ok and took < 120, f"{took:.0f} s: {out}")
    finally:
        holder.stdin.close()  # flock's child sees EOF and exits: the process we started ends by itself
        holder.wait(timeout=30)
    tally.finish()


# --- finding 4: the nsenter connection and netfleet-lab exec -----------------------------------------------------


def ping_via(env, name: str, var: str, value: str) -> str:
    """An ad hoc ping of one host whose connection target is ``var: value``; returns its output block."""
    inventory = env["tmp"] / f"{name}.yml"
    lines = ["bad:", "  vars:", "    ansible_connection: netfleet.overlay.nsenter", "  hosts:"]
    lines.append(f"    {name}: {{{var}: {json.dumps(value)}}}")
    inventory.write_text("\n".join(lines) + "\n")
    res = run_ansible(env["env"], "-i", str(inventory), "bad", "-m", "ansible.builtin.ping")
    return res.stdout + res.stderr


def refused(out: str, message: str) -> bool:
    return "UNREACHABLE!" in out and message in out and "SUCCESS" not in out and "pong" not in out


@pytest.fixture
def sleeper():
    """Start processes of our own (``sleeper(argv)``) and kill exactly those pids afterwards."""
    started = []

    def start(argv: list[str]) -> int:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        started.append(proc)
        deadline = time.monotonic() + 10
        while os.readlink(f"/proc/{proc.pid}/exe").endswith(("setpriv", "unshare")):  # until it execs sleep
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        return proc.pid

    yield start
    for proc in started:
        proc.kill()
        proc.wait(timeout=10)


def record_of(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        start = f.read().rsplit(")", 1)[1].split()[19]
    words = [str(pid), f"start={start}", f"nsdev={os.stat(f'/proc/{pid}/ns/net').st_dev}"]
    words += [f"{k}={os.stat(f'/proc/{pid}/ns/{k}').st_ino}" for k in ("user", "mnt", "uts", "ipc", "net", "pid")]
    return " ".join(words) + "\n"


def userns_allowed() -> bool:
    res = subprocess.run([*NOBODY, "unshare", "-Urmn", "true"], capture_output=True, check=False)
    return res.returncode == 0


def test_nsenter_refuses_what_is_not_the_recorded_lab_host(env, sleeper):
    lab, tmp = env["lab"], env["tmp"]
    tally = Tally(env["results"], "nsenter connection: a target that is not the recorded lab host")
    real = (lab.dir / "hosts" / "h1.pid").read_text()
    pid = int(real.split()[0])

    # a reused pid: the pid's process now started at another time than the one recorded
    words = real.split()
    words[1] = f"start={int(words[1].split('=')[1]) + 1}"
    (tmp / "reused.pid").write_text(" ".join(words) + "\n")
    out = ping_via(env, "reused", "ansible_nsenter_pidfile", str(tmp / "reused.pid"))
    tally.attempt(
        "pidfile whose start time does not match (reused pid)", refused(out, "so the pid now belongs to"), out
    )

    # a pidfile of an older lab: a bare pid proves nothing
    (tmp / "bare.pid").write_text(f"{pid}\n")
    out = ping_via(env, "bare", "ansible_nsenter_pidfile", str(tmp / "bare.pid"))
    tally.attempt("pidfile with a bare pid (old format)", refused(out, "restart the lab"), out)

    # a process that shares the controller's mount namespace, with only a private netns (a hardened service)
    svc = sleeper(["unshare", "-n", "sleep", "300"])
    for var, value in (("ansible_nsenter_pid", str(svc)), ("ansible_nsenter_pidfile", str(tmp / "svc.pid"))):
        (tmp / "svc.pid").write_text(record_of(svc))  # even recorded exactly as the lab would
        out = ping_via(env, "svc", var, value)
        message = "shares the controller's own mnt, uts, ipc, pid namespaces"
        tally.attempt(f"`unshare -n sleep` by {var}", refused(out, message), out)

    # an unprivileged user's sandbox: its own user namespace, whose /bin/sh that user controls
    if userns_allowed():
        box = sleeper([*NOBODY, "unshare", "-Urmn", "sleep", "300"])
        (tmp / "box.pid").write_text(record_of(box))
        for var, value in (("ansible_nsenter_pid", str(box)), ("ansible_nsenter_pidfile", str(tmp / "box.pid"))):
            out = ping_via(env, "box", var, value)
            tally.attempt(f"nobody's `unshare -Urmn` sandbox by {var}", refused(out, "another user namespace"), out)
    else:  # pragma: no cover - depends on the machine's sysctls
        pytest.fail("this machine refuses unprivileged user namespaces: the sandbox case cannot be tried here")

    # the real record still works: the checks refuse only what they should
    res = run_ansible(env["env"], "-i", str(lab.inventory), "h1", "-m", "ansible.builtin.ping")
    assert res.returncode == 0 and "pong" in res.stdout, res.stdout + res.stderr
    tally.finish()


def test_netfleet_lab_exec_refuses_a_reused_pid(env):
    lab = env["lab"]
    tally = Tally(env["results"], "netfleet-lab exec: a pid that is not the recorded holder")
    state_file = lab.dir / "state.json"
    original = state_file.read_text()
    state = json.loads(original)
    words = state["holders"]["h2"]["record"].split()
    words[1] = f"start={int(words[1].split('=')[1]) + 1}"
    state["holders"]["h2"]["record"] = " ".join(words)
    try:
        state_file.write_text(json.dumps(state))
        res = lab.exec("h2", "hostname")
        ok = res.returncode == 1 and "so the pid now belongs to another process" in res.stderr and not res.stdout
        tally.attempt("exec with a recorded start time that does not match", ok, res.stdout + res.stderr)
        del state["holders"]["h2"]["record"]
        state_file.write_text(json.dumps(state))
        res = lab.exec("h2", "hostname")
        ok = res.returncode == 1 and "restart the lab" in res.stderr and not res.stdout
        tally.attempt("exec on a lab recorded without start times (older lab)", ok, res.stdout + res.stderr)
    finally:
        state_file.write_text(original)
    assert lab.exec("h2", "hostname").stdout.strip() == "h2"
    tally.finish()


# --- finding 5: scope IDs and returned commands ------------------------------------------------------------------


def test_scope_ids_are_refused_and_commands_are_quoted(env):
    lab, tally = env["lab"], Tally(env["results"], "input: IPv6 scope IDs and shell words in returned commands")
    dev = f"nfsv{uuid.uuid4().hex[:4]}"
    assert sh(lab, "h1", f"ip link add {dev} type vxlan id 42 dstport 4789 nolearning").returncode == 0
    try:
        cases = [
            ("netfleet.overlay.neigh", {"dev": dev, "entries": [{"ip": "fe80::2%eth0", "mac": "02:42:0a:d5:00:02"}]}),
            ("netfleet.overlay.fdb", {"dev": dev, "entries": [{"mac": "02:42:0a:d5:00:02", "dst": "fe80::2%lo"}]}),
        ]
        for name, args in cases:
            res = module(env, "h1", name, args)
            field = "ip" if name.endswith("neigh") else "dst"
            ok = res.returncode != 0 and f"entries[0].{field}:" in res.stdout and "has an IPv6 scope ID" in res.stdout
            tally.attempt(f"{name} with a scope ID in {field}", ok, res.stdout)
        left = sh(lab, "h1", f"ip neigh show dev {dev} nud permanent; bridge fdb show dev {dev}").stdout
        tally.attempt("nothing reached the kernel", "fe80::2" not in left, left)
    finally:
        sh(lab, "h1", f"ip link del {dev}")

    # rendered commands: a device name with shell syntax stays one word of the pasted line
    evil = "v;touch${IFS}p"  # a valid interface name (no '/', ':' or whitespace)
    args = {"dev": evil, "state": "rendered", "entries": [{"mac": "02:42:0a:d5:00:02", "dst": "198.18.1.2"}]}
    res = run_ansible(
        env["env"], "-i", str(lab.inventory), "h1", "-m", "netfleet.overlay.fdb", "-a", json.dumps(args), "-o"
    )
    line = json.loads(res.stdout.split("=>", 1)[1])["rendered"][0] if "=>" in res.stdout else res.stdout
    words = shlex.split(line) if isinstance(line, str) else []
    tally.attempt("rendered fdb line with ';' and '$' in dev", words[:2] == ["bridge", "fdb"] and evil in words, line)
    tally.finish()


def test_results_file_names_every_case(env):
    """Last in the file: the cases above all recorded their counts (the fixture writes the file at teardown)."""
    cases = env["results"].cases
    assert len(cases) == 6, [c["case"] for c in cases]
    assert sum(c["tried"] for c in cases) >= 20 and all(c["got_through"] == 0 for c in cases)
