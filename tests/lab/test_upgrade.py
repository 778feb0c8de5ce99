# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Upgrades keep working: the demo fleet converged by the previous release, then by this tree.

The previous release (0.1.0, commit b96cb84, tag v0.1.0) is extracted with ``git archive`` into a collection path
of its own and converges the demo lab with its own role, playbooks and inventories/lab. It keeps no ownership
record. This tree's first converge then takes every host over from the aliases 0.1.0 wrote and records it; it may
change no link, address, route, ARP or FDB entry (kernel snapshots of h1, h2, h3 identical but for the allowlist's
nftables ruleset, which a release may change). Its second converge reports changed=0 everywhere, verify.yml passes
and teardown.yml leaves every host as it was before the first converge.

Only the lab's connection plugin (``netfleet.overlay.nsenter`` and its helper) is this tree's in the old collection
path too: the pidfiles that this tree's ``tools/netfleet-lab`` writes are what that plugin reads.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
import time

import pytest
from devenv import ansible_env
from lab_helpers import REPO, build_lab, needs_root, run_ansible
from reliability_helpers import HOSTS, Fleet, Results, check_teardown_leaves_no_residue, snapshot_diff

pytestmark = [pytest.mark.lab, needs_root]

PREVIOUS = "b96cb84"  # release 0.1.0 (tag v0.1.0)
RECORD = "/run/netfleet-overlay/ownership.json"
LAB_FILES = ("plugins/connection/nsenter.py", "plugins/plugin_utils/_nstarget.py")


def extract_previous(dest) -> None:
    """The previous release's tree as ``dest/ansible_collections/netfleet/overlay``; fails when the commit is
    missing (a shallow clone, say): the upgrade guarantee cannot be checked without it."""
    found = subprocess.run(
        ["git", "-C", str(REPO), "cat-file", "-e", f"{PREVIOUS}^{{commit}}"], capture_output=True, check=False
    )
    if found.returncode != 0:
        pytest.fail(
            f"commit {PREVIOUS} (release 0.1.0) is not in {REPO}: fetch the full history (git fetch --unshallow"
            " --tags) to test upgrades from it"
        )
    tree = dest / "ansible_collections" / "netfleet" / "overlay"
    tree.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", PREVIOUS], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")
    for name in LAB_FILES:
        if (REPO / name).exists():
            shutil.copyfile(REPO / name, tree / name)


def without_nft(snap: dict) -> dict:
    return {
        host: {ns: {kind: data for kind, data in sections.items() if kind != "nft"} for ns, sections in netns.items()}
        for host, netns in snap.items()
    }


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nfl-upgrade")
    results = Results("upgrade")
    extract_previous(tmp / "previous")
    for lab in build_lab(tmp / "lab", 3):
        fleet = Fleet(lab, ansible_env(tmp), tmp)
        fleet.previous = {**fleet.env, "ANSIBLE_COLLECTIONS_PATH": str(tmp / "previous")}
        fleet.previous_tree = tmp / "previous" / "ansible_collections" / "netfleet" / "overlay"
        fleet.results = results
        fleet.pristine = fleet.snapshot()
        yield fleet
    results.write()


def test_a_fleet_of_the_previous_release_is_taken_over_without_a_change(fleet):
    started = time.monotonic()
    old = fleet.previous_tree
    inventories = ["-i", str(fleet.lab.inventory), "-i", str(old / "inventories" / "lab")]
    res = run_ansible(fleet.previous, *inventories, str(old / "playbooks" / "site.yml"), tool="ansible-playbook")
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-2000:]
    assert "changed: [h1]" in res.stdout, "the previous release built nothing"
    for host in HOSTS:
        assert fleet.sh(host, f"test -e {RECORD} && echo yes || echo no").strip() == "no", host
    before = fleet.snapshot()

    fleet.converge()
    after = fleet.snapshot()
    assert without_nft(after) == without_nft(before), snapshot_diff(without_nft(before), without_nft(after))
    for host in HOSTS:
        record = json.loads(fleet.sh(host, f"cat {RECORD}"))
        assert set(record["networks"]) == {"overlay_network", "backend"}, (host, record)
        assert record["endpoints"], (host, record)
        assert all(entry["netns_created"] for entry in record["endpoints"].values()), record

    recap, changed = fleet.converge()[1:]
    assert changed == [], recap
    res = fleet.play("verify.yml")[0]
    assert res.returncode == 0, res.stdout[-4000:]
    assert "7 endpoints, 42 pings: all as expected" in res.stdout, res.stdout[-3000:]
    fleet.results.add(
        "upgrade",
        f"from-{PREVIOUS}",
        [
            "release 0.1.0 (git archive b96cb84) converges the demo fleet and keeps no record",
            "this tree's first converge records every host's networks and endpoints and changes no link, address,"
            " route, ARP or FDB entry (snapshots of h1, h2, h3)",
            "its second converge: changed=0 on every host; verify.yml: all as expected",
        ],
        True,
        time.monotonic() - started,
    )


def test_teardown_leaves_no_residue(fleet):
    check_teardown_leaves_no_residue(fleet, "teardown-after-upgrade")
