# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""inventories/example works with playbooks/site.yml as it stands, also in an inventory that holds other hosts.

The example's group_vars and host_vars are used unchanged. Only hosts.yml is the lab's: the same host names and
group (`overlay`, node1..3.example.com), entered through the nsenter connection instead of SSH, plus a host of
another group that is not part of the example. site.yml converges, verify.yml passes, a second site.yml is
changed=0, and the role installs nothing (the example leaves overlay_install_deps off).
"""

from __future__ import annotations

import re
import shutil

import pytest
import yaml
from devenv import ansible_env
from lab_helpers import REPO, build_lab, needs_root, run_ansible

pytestmark = [pytest.mark.lab, needs_root]

EXAMPLE = REPO / "inventories" / "example"
NODES = {"node1.example.com": "h1", "node2.example.com": "h2", "node3.example.com": "h3"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    yield from build_lab(tmp_path_factory.mktemp("nfl-example"), 4)


def _inventory(lab, dest):
    """The example directory with a hosts.yml that reaches the lab's hosts (and h4 in another group)."""
    shutil.copytree(EXAMPLE / "group_vars", dest / "group_vars")
    shutil.copytree(EXAMPLE / "host_vars", dest / "host_vars")
    lab_inv = yaml.safe_load(lab.inventory.read_text(encoding="utf-8"))["all"]["children"]["lab"]
    connection = lab_inv["vars"]

    def host(name):
        return {**connection, **lab_inv["hosts"][name]}

    hosts = {
        "all": {
            "children": {
                "overlay": {"hosts": {node: host(h) for node, h in NODES.items()}},
                "bystanders": {"hosts": {"h4": host("h4")}},
            }
        }
    }
    (dest / "hosts.yml").write_text(yaml.safe_dump(hosts), encoding="utf-8")
    return dest


def _recap(stdout: str) -> dict[str, dict[str, int]]:
    found = {}
    for name, counts in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", stdout, re.M):
        found[name] = {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", counts)}
    return found


def test_example_inventory_runs_as_it_is(lab, tmp_path):
    example_vars = yaml.safe_load((EXAMPLE / "group_vars" / "all.yml").read_text(encoding="utf-8"))
    assert "overlay_fleet_group" not in example_vars and example_vars["overlay_install_deps"] is False
    inventory = _inventory(lab, tmp_path / "example")
    env = ansible_env(tmp_path)
    site = REPO / "playbooks" / "site.yml"

    first = run_ansible(env, "-i", str(inventory), str(site), tool="ansible-playbook")
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    assert "TASK [netfleet.overlay.overlay : Install the dependencies" not in first.stdout
    recap = _recap(first.stdout)
    assert set(recap) == {*NODES, "h4"}
    assert all(recap[node]["changed"] > 0 for node in NODES), recap
    assert recap["h4"]["failed"] == 0 and recap["h4"]["unreachable"] == 0

    verify = run_ansible(env, "-i", str(inventory), str(REPO / "playbooks" / "verify.yml"), tool="ansible-playbook")
    assert verify.returncode == 0, verify.stdout[-4000:] + verify.stderr[-2000:]

    second = run_ansible(env, "-i", str(inventory), str(site), tool="ansible-playbook")
    assert second.returncode == 0, second.stdout[-4000:]
    assert all(counts["changed"] == 0 for counts in _recap(second.stdout).values()), second.stdout[-3000:]

    # the endpoints that the example's host_vars declare are there, with the example's fixed address and MAC
    api = lab.exec("h1", "ip", "netns", "exec", "api", "ip", "-o", "-4", "addr", "show", "dev", "eth0")
    assert "10.214.0.10/24" in api.stdout, api.stdout + api.stderr
    hostb = lab.exec("h2", "ip", "netns", "exec", "hostb", "ip", "-o", "link", "show", "dev", "eth0")
    assert "02:00:00:00:0b:01" in hostb.stdout, hostb.stdout + hostb.stderr

    down = run_ansible(env, "-i", str(inventory), str(REPO / "playbooks" / "teardown.yml"), tool="ansible-playbook")
    assert down.returncode == 0, down.stdout[-3000:]
