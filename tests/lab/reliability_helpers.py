# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the reliability tests (tests/lab/test_reliability_*.py) share: kernel snapshots of lab hosts, a driver for
the playbooks and for single modules, and the results file that docs/reliability.md is written from.

A snapshot is read inside a lab host, independently of the collection, with ``ip -j``, ``bridge -j``, ``ss`` and
``nft -j``: for the host's own namespace and every named netns, its links, addresses, routes, static neighbours,
static FDB entries, UDP sockets and nftables ruleset. Only what changes by itself is left out: timers, learned
(dynamic) neighbours and FDB entries, and nft counters; and a snapshot first waits until no IPv6 address is
tentative (duplicate address detection of a link that just came up).
"""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from devenv import ansible_env
from lab_helpers import REPO, build_lab, run_ansible
from support.demo_fleet import LAB_VARS, VTEP

PLAYBOOKS = REPO / "playbooks"
RESULTS_DIR = REPO / "tests" / "output" / "reliability"
HOSTS = tuple(VTEP)

RECAP_RE = re.compile(
    r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)",
    re.MULTILINE,
)
# overlay_host is the only task of the role that reports a change
CHANGED_RE = re.compile(r"^changed: \[(h\d+)\]", re.MULTILINE)

SNAPSHOT_SCRIPT = r"""
snap() {
  if [ -n "$1" ]; then n="-n $1"; x="ip netns exec $1"; else n=""; x=""; fi
  echo "@@link";   ip $n -j -d link show
  echo "@@addr";   ip $n -j addr show
  echo "@@route4"; ip $n -j -4 route show table all
  echo "@@route6"; ip $n -j -6 route show table all
  echo "@@neigh";  ip $n -j neigh show
  echo "@@fdb";    bridge $n -j fdb show
  echo "@@udp";    $x ss -Hunl
  if command -v nft >/dev/null 2>&1; then echo "@@nft"; $x nft -j list ruleset; fi
}
# IPv6 duplicate address detection settles by itself within a second or two: wait for it first
i=0
while [ $i -lt 50 ]; do
  t=$(ip -6 addr show tentative
     for ns in $(ip netns list | cut -d' ' -f1); do ip -n "$ns" -6 addr show tentative; done)
  [ -z "$t" ] && break
  sleep 0.1; i=$((i + 1))
done
echo "@@ns -"; snap ""
for ns in $(ip netns list | cut -d' ' -f1); do echo "@@ns $ns"; snap "$ns"; done
"""


def _strip(value):
    """Drop what changes by itself: bridge timers and nft counters."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key.endswith("_timer"):
                continue
            zeroed = key == "counter" and isinstance(item, dict)
            out[key] = {"packets": 0, "bytes": 0} if zeroed else _strip(item)
        return out
    if isinstance(value, list):
        return [_strip(item) for item in value]
    return value


def _static_neigh(entry: dict) -> bool:
    return bool({"PERMANENT", "NOARP"} & set(entry.get("state") or []))


def _static_fdb(entry: dict) -> bool:
    return entry.get("state") in ("permanent", "static")


def _section(kind: str, text: str):
    if kind == "udp":
        return sorted(" ".join(line.split()[3:]) for line in text.splitlines() if line.strip())
    data = json.loads(text) if text.strip() else []
    if kind == "neigh":
        data = [e for e in data if _static_neigh(e)]
    elif kind == "fdb":
        data = [e for e in data if _static_fdb(e)]
    elif kind == "nft":
        data = [e for e in data.get("nftables", []) if "metainfo" not in e]
    data = _strip(data)
    if kind != "link":
        data = sorted(data, key=lambda e: json.dumps(e, sort_keys=True))
    return data


def parse_snapshot(text: str) -> dict:
    """``{netns or '-': {section: normalised data}}`` from the script's output."""
    out: dict = {}
    ns = kind = None
    chunks: dict = {}
    for line in text.splitlines(keepends=True):
        if line.startswith("@@ns "):
            ns = line.split()[1]
            out[ns] = chunks = {}
            continue
        if line.startswith("@@"):
            kind = line[2:].strip()
            chunks[kind] = ""
            continue
        chunks[kind] += line
    return {ns: {kind: _section(kind, text) for kind, text in sections.items()} for ns, sections in out.items()}


def snapshot(lab, hosts=HOSTS) -> dict:
    """Every host's kernel state, read in parallel: ``{host: {netns: {section: data}}}``."""

    def one(host):
        res = lab.exec(host, "sh", "-c", SNAPSHOT_SCRIPT)
        assert res.returncode == 0, f"snapshot of {host} failed: {res.stderr}"
        return host, parse_snapshot(res.stdout)

    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        return dict(pool.map(one, hosts))


def snapshot_diff(before: dict, after: dict, limit: int = 40) -> str:
    """What differs between two snapshots, one line per item, for assertion messages."""
    lines = []
    for host in sorted(set(before) | set(after)):
        b_host, a_host = before.get(host, {}), after.get(host, {})
        for ns in sorted(set(b_host) | set(a_host)):
            if ns not in a_host:
                lines.append(f"{host}: netns {ns} is gone")
                continue
            if ns not in b_host:
                lines.append(f"{host}: netns {ns} is new")
                continue
            for kind in sorted(set(b_host[ns]) | set(a_host[ns])):
                b_items = [json.dumps(i, sort_keys=True) for i in b_host[ns].get(kind, [])]
                a_items = [json.dumps(i, sort_keys=True) for i in a_host[ns].get(kind, [])]
                for item in sorted(set(b_items) - set(a_items)):
                    lines.append(f"{host} {ns} {kind} - {item[:300]}")
                for item in sorted(set(a_items) - set(b_items)):
                    lines.append(f"{host} {ns} {kind} + {item[:300]}")
    more = f"\n... and {len(lines) - limit} more" if len(lines) > limit else ""
    return "\n".join(lines[:limit]) + more


class Fleet:
    """The demo fleet (inventories/lab) on a 3-host lab: runs playbooks and modules, reads the kernel."""

    def __init__(self, lab, env: dict, tmp: Path):
        self.lab = lab
        self.env = env
        self.tmp = tmp
        self.runs = 0

    def play(self, playbook: str, *args: str, overrides: dict | None = None, env: dict | None = None):
        """Run a playbook with the lab's inventory, the demo's variables and optional host_vars overrides.

        ``overrides`` maps host -> YAML text of a host_vars file in a third inventory source, whose variables
        win over the demo's. Returns ``(process, {host: recap counts}, sorted hosts reported changed)``.
        """
        inventories = ["-i", str(self.lab.inventory), "-i", str(LAB_VARS)]
        self.runs += 1
        if overrides:
            extra = self.tmp / f"overrides-{self.runs}"
            (extra / "host_vars").mkdir(parents=True)
            for host, text in overrides.items():
                (extra / "host_vars" / f"{host}.yml").write_text(text, encoding="utf-8")
            inventories += ["-i", str(extra)]
        res = run_ansible(
            {**self.env, **(env or {})}, *inventories, str(PLAYBOOKS / playbook), *args, tool="ansible-playbook"
        )
        recap = {
            m["host"]: {k: int(m[k]) for k in ("ok", "changed", "unreachable", "failed")}
            for m in RECAP_RE.finditer(res.stdout)
        }
        return res, recap, sorted(CHANGED_RE.findall(res.stdout))

    def converge(self, *args: str):
        res, recap, changed = self.play("site.yml", *args)
        assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]
        assert set(recap) == set(HOSTS), recap
        return res, recap, changed

    def module(self, host: str, module: str, args: dict, *, check: bool = False):
        """One module run on one host (ad hoc), as ``ansible HOST -m MODULE -a JSON``."""
        extra = ["--check"] if check else []
        return run_ansible(self.env, "-i", str(self.lab.inventory), host, "-m", module, "-a", json.dumps(args), *extra)

    def sh(self, host: str, script: str, check: bool = True):
        res = self.lab.exec(host, "sh", "-c", script)
        if check:
            assert res.returncode == 0, f"{host}: {script!r} failed: {res.stderr}"
        return res.stdout

    def snapshot(self, hosts=HOSTS) -> dict:
        return snapshot(self.lab, hosts)


def host_diff(stdout: str, host: str) -> str:
    """The diff that the overlay_host task printed for ``host`` (default callback: the diff precedes the line
    ``changed: [host]``, after the task banner)."""
    task = stdout.split("TASK [netfleet.overlay.overlay : Converge the host", 1)
    if len(task) < 2:
        return ""
    body = task[1].split("\nPLAY RECAP", 1)[0]
    chunks = re.split(r"^(?:changed|ok|fatal|skipping): \[(h\d+)\].*$", body, flags=re.MULTILINE)
    # re.split with one group: [text, host, text, host, ...]: a host's diff is the text before its status line
    for index in range(1, len(chunks), 2):
        if chunks[index] == host:
            return chunks[index - 1]
    return ""


def fatal_text(stdout: str) -> str:
    """Every failure line of a run (``fatal: [h]: ...``, ``h1 | FAILED! => ...``), joined."""
    lines = [
        line
        for line in stdout.splitlines()
        if line.startswith("fatal: [") or " | FAILED!" in line or line.startswith("[ERROR]")
    ]
    # ad hoc output prints the result as indented JSON below "h1 | FAILED! => {"
    adhoc = re.findall(r"^(\S+ \| FAILED! => \{.*?^\})", stdout, flags=re.MULTILINE | re.DOTALL)
    return "\n".join(lines + adhoc)


class Results:
    """Machine-readable results of one test file, written to tests/output/reliability/<name>.json."""

    def __init__(self, name: str):
        self.name = name
        self.cases: list[dict] = []
        self.started = time.time()

    def add(self, kind: str, case: str, checks: list[str], ok: bool, seconds: float, **detail) -> None:
        self.cases.append(
            {"kind": kind, "case": case, "checks": checks, "ok": ok, "seconds": round(seconds, 1), **detail}
        )

    def write(self) -> Path:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        path = RESULTS_DIR / f"{self.name}.json"
        data = {
            "file": self.name,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seconds": round(time.time() - self.started, 1),
            "cases": self.cases,
        }
        path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        return path


PRISTINE_CHECK = "every host's snapshot after teardown.yml equals the one from before the first site.yml"


def demo_lab(tmp_path_factory, name: str, fleet_class: type[Fleet] | None = None, *, hosts: int = 3):
    """Generator for a module-scoped fixture: a lab of ``hosts`` in a temporary directory ``nfl-<name>`` and a
    ``fleet_class`` (default :class:`Fleet`) that drives the demo fleet on it; the lab is removed afterwards."""
    tmp = tmp_path_factory.mktemp(f"nfl-{name}")
    for lab in build_lab(tmp / "lab", hosts):
        yield (fleet_class or Fleet)(lab, ansible_env(tmp), tmp)


def lab_fleet(tmp_path_factory, name: str, *, converge: bool = True, hosts: int = 3):
    """Generator for a module-scoped fixture: :func:`demo_lab`'s :class:`Fleet`, recording into ``Results(name)``
    (written when the lab is gone), with its snapshot from before anything ran (``pristine``), and one converge
    unless ``converge`` is false."""
    results = Results(name)
    for fleet in demo_lab(tmp_path_factory, name, hosts=hosts):
        fleet.results = results
        fleet.pristine = fleet.snapshot()
        if converge:
            fleet.converge()
        yield fleet
    results.write()


def check_teardown_leaves_no_residue(fleet: Fleet, case: str, check: str = PRISTINE_CHECK) -> None:
    """Run teardown.yml and assert that every host is back to ``fleet.pristine``; record the case in
    ``fleet.results`` (as kind ``teardown``) before asserting, so a failure is in the results file too."""
    started = time.monotonic()
    res, recap = fleet.play("teardown.yml")[:2]
    assert res.returncode == 0, res.stdout[-4000:]
    assert set(recap) == set(HOSTS)
    after = fleet.snapshot()
    ok = after == fleet.pristine
    fleet.results.add("teardown", case, [check], ok, time.monotonic() - started)
    assert ok, "teardown left residue:\n" + snapshot_diff(fleet.pristine, after)
