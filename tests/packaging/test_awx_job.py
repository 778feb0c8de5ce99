# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A job run the way AWX runs one: ansible-runner over a private data dir, on a 3-host lab.

The private data dir is laid out as AWX lays it out for a job:

* ``project/``: the project checkout, a playbook that imports ``netfleet.overlay.site`` and
  ``collections/requirements.yml`` naming the built tarball (``type: file``). As in AWX's project update, the
  collections are installed from it into ``project/collections`` before the job, and ANSIBLE_COLLECTIONS_PATH
  points there only (the checkout is never seen).
* ``inventory/``: the lab's hosts (netfleet-lab's inventory.yml) and the demo topology (inventories/lab).
* ``env/extravars``: the survey's answers; ``env/envvars``: the job's environment.
* The fact cache of a job template with "Enable Fact Storage": ansible-runner points ansible at the jsonfile
  cache ``artifacts/<job>/fact_cache`` (ANSIBLE_CACHE_PLUGIN=jsonfile, ANSIBLE_CACHE_PLUGIN_CONNECTION=that dir;
  it overrides any other connection given in envvars). Before a job AWX writes the stored facts of every host of
  the inventory there, and after it stores what changed; ``fact_store`` plays AWX's database here.

Job 1 converges the fleet. Job 2 runs with ``limit: h1`` after one of h1's FDB entries was deleted by hand: the
cached facts of h2 and h3 give h1 its full peer table back, and nothing of h2/h3 is purged or touched.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from devenv import ansible_env
from packaging_helpers import REPO, install, tool

sys.path.insert(0, str(REPO / "tests" / "lab"))
from lab_helpers import build_lab, needs_root
from support.demo_fleet import DEMO, LAB_VARS, VNI, VTEP, mac_of

pytestmark = [pytest.mark.packaging, pytest.mark.lab, needs_root]

# The project's playbook: the collection's site playbook, by its FQCN.
CONVERGE = """---
- name: Converge the overlay of the fleet
  ansible.builtin.import_playbook: netfleet.overlay.site
"""
# The survey of the job template: what a user picks at launch.
SURVEY = {"overlay_state": "present", "overlay_fleet_group": "lab"}
# Read-only dump of a host: its netns, links, and per overlay netns the vxlan FDB and ARP tables as JSON.
DUMP = r"""
echo "@netns"; ip netns list | cut -d' ' -f1 | sort
echo "@links"; ip -o link show | cut -d: -f2 | cut -d@ -f1 | sort
for ns in $(ip netns list | cut -d' ' -f1 | grep '^ovl-' | sort); do
  echo "@fdb $ns"; bridge -n "$ns" -j fdb show dev vxlan0
  echo "@neigh $ns"; ip -n "$ns" -j neigh show dev vxlan0
done
"""


def expected(host: str) -> dict[str, tuple[set, set]]:
    """Per overlay netns of ``host``: (FDB {(mac, dst)}, ARP {(ip, mac)}) of every remote endpoint."""
    tables = {}
    for network in {net for (owner, _name), (net, _ip) in DEMO.items() if owner == host}:
        remote = [(h, ip) for (h, _name), (net, ip) in DEMO.items() if net == network and h != host]
        tables[f"ovl-{VNI[network]}"] = (
            {(mac_of(ip), VTEP[h]) for h, ip in remote},
            {(ip, mac_of(ip)) for _h, ip in remote},
        )
    return tables


class Job:
    """One private data dir, and the jobs that ansible-runner runs in it."""

    def __init__(self, root: Path, lab, tarball: Path):
        self.root = root
        self.lab = lab
        self.project = root / "project"
        self.collections = self.project / "collections"
        self.facts = root / "fact_store"  # AWX's database of host facts
        self.env = ansible_env(root, isolated=True)
        self._lay_out(tarball)

    def _lay_out(self, tarball: Path) -> None:
        inventory = self.root / "inventory"
        inventory.mkdir(parents=True)
        shutil.copy2(self.lab.inventory, inventory / "hosts.yml")
        shutil.copytree(LAB_VARS / "group_vars", inventory / "group_vars")
        shutil.copytree(LAB_VARS / "host_vars", inventory / "host_vars")
        self.collections.mkdir(parents=True)
        requirements = {"collections": [{"name": str(tarball), "type": "file"}]}
        (self.collections / "requirements.yml").write_text(yaml.safe_dump(requirements), encoding="utf-8")
        (self.project / "converge.yml").write_text(CONVERGE, encoding="utf-8")
        env = self.root / "env"
        env.mkdir()
        (env / "extravars").write_text(yaml.safe_dump(SURVEY), encoding="utf-8")
        envvars = {
            "ANSIBLE_COLLECTIONS_PATH": str(self.collections),
            "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
            "ANSIBLE_CACHE_PLUGIN_TIMEOUT": "86400",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_NOCOLOR": "1",
        }
        (env / "envvars").write_text(yaml.safe_dump(envvars), encoding="utf-8")
        # AWX's project update: install the project's collections requirements before any job
        install(self.collections / "requirements.yml", self.collections, self.root, requirements=True)

    def run(self, ident: str, *args: str, fact_storage: bool = True) -> dict:
        """``ansible-runner run`` of converge.yml; returns status, rc, the stats event and the stdout."""
        artifacts = self.root / "artifacts" / ident
        cache = artifacts / "fact_cache"
        if fact_storage and self.facts.is_dir():  # AWX's start_fact_cache: the stored facts of every inventory host
            shutil.copytree(self.facts, cache)
        cmd = [tool("ansible-runner"), "run", str(self.root), "-p", "converge.yml", "--ident", ident, *args]
        res = subprocess.run(cmd, capture_output=True, text=True, env=self.env, cwd=self.root, timeout=300, check=False)
        if fact_storage and cache.is_dir():  # AWX's finish_fact_cache: store what the job left
            shutil.copytree(cache, self.facts, dirs_exist_ok=True)
        events = [json.loads(p.read_text()) for p in sorted((artifacts / "job_events").glob("*.json"))]
        stats = next((e["event_data"] for e in events if e.get("event") == "playbook_on_stats"), {})
        return {
            "status": (artifacts / "status").read_text().strip(),
            "rc": int((artifacts / "rc").read_text()),
            "stats": stats,
            "stdout": (artifacts / "stdout").read_text() + res.stdout[-2000:] + res.stderr[-2000:],
        }

    def state(self, host: str) -> dict:
        res = self.lab.exec(host, "sh", "-c", DUMP)
        assert res.returncode == 0, res.stderr
        out: dict = {"netns": [], "links": [], "fdb": {}, "neigh": {}}
        section: tuple[str, str | None] = ("netns", None)
        for line in res.stdout.splitlines():
            if line.startswith("@"):
                kind, *ns = line[1:].split()
                section = (kind, ns[0] if ns else None)
            elif line.strip():
                kind, ns = section
                if ns is None:
                    out[kind].append(line.strip())
                else:
                    out[kind][ns] = json.loads(line)
        return out


def tables(state: dict) -> dict[str, tuple[set, set]]:
    """Per overlay netns: the vxlan device's permanent FDB entries and ARP entries, as in expected()."""
    result = {}
    for ns, fdb in state["fdb"].items():
        fdb_entries = {
            (e["mac"], e["dst"]) for e in fdb if "self" in e.get("flags", []) and e.get("state") == "permanent"
        }
        neigh = {(e["dst"], e["lladdr"]) for e in state["neigh"][ns] if "PERMANENT" in e.get("state", [])}
        result[ns] = (fdb_entries, neigh)
    return result


def processed(stats: dict) -> set[str]:
    return {host for key in ("ok", "changed", "failures", "dark", "skipped") for host in stats.get(key, {})}


@pytest.fixture(scope="module")
def job(tarball, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nfl-awx")
    for lab in build_lab(tmp / "lab", 3):
        yield Job(tmp / "job", lab, tarball)


def test_job_runs_from_the_installed_collection_only(job):
    installed = job.collections / "ansible_collections" / "netfleet" / "overlay"
    assert (installed / "MANIFEST.json").is_file() and (installed / "playbooks" / "site.yml").is_file()
    assert not installed.is_symlink()


def test_job_1_converges_the_fleet(job):
    result = job.run("job1")
    assert (result["status"], result["rc"]) == ("successful", 0), result["stdout"][-6000:]
    stats = result["stats"]
    assert processed(stats) == {"h1", "h2", "h3"}
    assert not stats.get("failures") and not stats.get("dark")
    assert all(stats["changed"].get(h) for h in VTEP), stats
    for host in VTEP:
        assert tables(job.state(host)) == expected(host), host
    # the fact store now holds every host's overlay facts
    for host, vtep in VTEP.items():
        (cached,) = job.facts.glob(f"*{host}")  # ansible-core 2.19 names the file s1_<host>
        facts = json.loads(cached.read_text())
        facts = json.loads(facts["__payload__"]) if "__payload__" in facts else facts
        assert facts["netfleet_overlay"]["vtep"] == vtep


def test_job_2_limited_to_h1_restores_its_table_from_cached_facts(job):
    if not list(job.facts.glob("*h3")):  # when run alone
        job.run("job1-again")
    before = {host: job.state(host) for host in ("h2", "h3")}
    # lose one of h1's entries for an endpoint on h3 (hostc)
    hostc_mac = mac_of("10.213.0.4")
    res = job.lab.exec("h1", "bridge", "-n", "ovl-256", "fdb", "del", hostc_mac, "dev", "vxlan0")
    assert res.returncode == 0, res.stderr
    assert (hostc_mac, VTEP["h3"]) not in tables(job.state("h1"))["ovl-256"][0]

    result = job.run("job2", "--limit", "h1")
    assert (result["status"], result["rc"]) == ("successful", 0), result["stdout"][-6000:]
    stats = result["stats"]
    assert processed(stats) == {"h1"}, stats  # h2 and h3 are outside the limit: no task ran there
    assert stats["changed"] == {"h1": 1}, stats
    # h1 has the full peer table again, and kept every entry of h2's and h3's endpoints
    assert tables(job.state("h1")) == expected("h1")
    # h2 and h3 were not touched
    assert {host: job.state(host) for host in ("h2", "h3")} == before


def test_without_fact_storage_a_limited_job_keeps_but_cannot_restore(job):
    """The control: with no stored facts, h2's and h3's VTEPs are preserved on h1, so what points at them stays,
    but a lost entry stays lost until a job that sees the whole fleet (or its facts) runs."""
    hostd_mac = mac_of("10.213.0.5")
    res = job.lab.exec("h1", "bridge", "-n", "ovl-256", "fdb", "del", hostd_mac, "dev", "vxlan0")
    assert res.returncode == 0, res.stderr
    result = job.run("job-no-facts", "--limit", "h1", fact_storage=False)
    assert (result["status"], result["rc"]) == ("successful", 0), result["stdout"][-6000:]
    fdb, neigh = tables(job.state("h1"))["ovl-256"]
    want_fdb, want_neigh = expected("h1")["ovl-256"]
    # every other entry of h2's and h3's endpoints is kept; hostd's ARP entry, orphaned, goes with its FDB entry
    assert fdb == want_fdb - {(hostd_mac, VTEP["h3"])}
    assert neigh == want_neigh - {("10.213.0.5", hostd_mac)}
    result = job.run("job-restore", "--limit", "h1")
    assert (result["status"], result["rc"]) == ("successful", 0), result["stdout"][-6000:]
    assert tables(job.state("h1")) == expected("h1")


def test_job_limited_again_changes_nothing(job):
    result = job.run("job3", "--limit", "h1")
    assert (result["status"], result["rc"]) == ("successful", 0), result["stdout"][-6000:]
    assert not result["stats"].get("changed"), result["stats"]
    assert tables(job.state("h1")) == expected("h1")
