# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/topology.yml on a 3-host lab: the pictures show what the kernels hold, and are redrawn only when the
graph changed.

The fleet is the demo's (inventories/lab). What the pictures must show is read from the kernels of the lab's
hosts (read-only): every host's VTEP is the ``local`` address of its vxlan devices, and every endpoint's
address, prefix length and MAC are those of ``eth0`` in its netns.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest
from devenv import ansible_env
from lab_helpers import REPO, build_lab, needs_root, run_ansible

pytestmark = [pytest.mark.lab, needs_root]

HOSTS = ("h1", "h2", "h3")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG_TEXT = "{http://www.w3.org/2000/svg}text"
RECAP_RE = re.compile(r"^(?P<host>h\d+)\s+:\s+ok=\d+\s+changed=(?P<changed>\d+)\s", re.MULTILINE)
# Per host: every overlay netns' vxlan0 (its local address is the VTEP), then eth0 of every endpoint netns.
KERNEL = r"""
for ns in $(ip netns list | cut -d' ' -f1); do
  case "$ns" in
    ovl-*) echo "vxlan $ns $(ip -j -d -n "$ns" link show vxlan0)" ;;
    *) echo "endpoint $ns $(ip -j -n "$ns" addr show dev eth0)" ;;
  esac
done
"""


class Topology:
    def __init__(self, lab, env, tmp):
        self.lab = lab
        self.env = env
        self.out = tmp / "topology"

    def play(self, playbook: str, *args: str):
        inventories = ["-i", str(self.lab.inventory), "-i", str(REPO / "inventories" / "lab")]
        return run_ansible(
            self.env, *inventories, str(REPO / "playbooks" / playbook), *args, tool="ansible-playbook", timeout=300
        )

    def draw(self, *args: str):
        res = self.play("topology.yml", "-e", f"topology_dir={self.out}", *args)
        assert res.returncode == 0, res.stdout[-4000:] + res.stderr
        return {m["host"]: int(m["changed"]) for m in RECAP_RE.finditer(res.stdout)}

    def kernel(self) -> dict:
        """host -> {vteps: {local addresses of its vxlan devices}, endpoints: {name: (ip/prefixlen, mac)}}."""
        found = {}
        for host in HOSTS:
            res = self.lab.exec(host, "sh", "-c", KERNEL)
            assert res.returncode == 0, res.stderr
            vteps, endpoints = set(), {}
            for line in res.stdout.splitlines():
                kind, ns, text = line.split(" ", 2)
                [link] = json.loads(text)
                if kind == "vxlan":
                    vteps.add(link["linkinfo"]["info_data"]["local"])
                else:
                    [addr] = [a for a in link["addr_info"] if a["family"] == "inet"]
                    endpoints[ns] = (f"{addr['local']}/{addr['prefixlen']}", link["address"])
            found[host] = {"vteps": vteps, "endpoints": endpoints}
        return found


@pytest.fixture(scope="module")
def topology(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nfl-topology")
    env = ansible_env(tmp)
    for lab in build_lab(tmp / "lab", len(HOSTS)):
        topo = Topology(lab, env, tmp)
        res = topo.play("site.yml")
        assert res.returncode == 0, res.stdout[-4000:] + res.stderr
        yield topo


def svg_texts(path) -> list[str]:
    root = ET.parse(path).getroot()  # also: the SVG is well-formed XML
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return [el.text for el in root.iter(SVG_TEXT) if el.text]


def test_pictures_show_every_host_vtep_endpoint_ip_and_mac(topology):
    assert set(topology.draw()) == set(HOSTS)
    png = (topology.out / "topology.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE) and len(png) > 10_000
    texts = svg_texts(topology.out / "topology.svg")
    kernel = topology.kernel()
    assert sum(len(state["endpoints"]) for state in kernel.values()) == 7  # the demo fleet: nothing vacuous
    for host, state in kernel.items():
        [vtep] = state["vteps"]  # one VTEP per host, on all of its vxlan devices
        assert host in texts
        assert f"VTEP {vtep} (eth0)" in texts
        for name, (address, mac) in state["endpoints"].items():
            assert {name, address, mac} <= set(texts), (host, name)
    assert "3 hosts, 2 networks, 7 endpoints" in texts
    assert {"VNI 256", "10.213.0.0/24", "VNI 300", "10.214.0.0/24"} <= set(texts)
    dot = (topology.out / "topology.dot").read_text(encoding="utf-8")
    assert dot.count(" -> ") == 7


def test_pictures_are_drawn_again_only_for_a_new_graph(topology):
    topology.draw()
    paths = [topology.out / f"topology.{suffix}" for suffix in ("dot", "png", "svg")]
    before = [path.stat().st_mtime_ns for path in paths]
    assert topology.draw() == {"h1": 0, "h2": 0, "h3": 0}
    assert [path.stat().st_mtime_ns for path in paths] == before
    changed = topology.draw("-e", json.dumps({"topology_title": "second drawing"}))
    assert changed == {"h1": 3, "h2": 0, "h3": 0}  # the graph, the old pictures removed, the new ones rendered
    assert "second drawing" in svg_texts(topology.out / "topology.svg")
    assert (topology.out / "topology.png").read_bytes().startswith(PNG_SIGNATURE)


def test_missing_graphviz_fails_before_reading_the_hosts(topology, tmp_path):
    out = tmp_path / "none"
    res = topology.play("topology.yml", "-e", f"topology_dir={out}", "-e", "topology_graphviz=/nonexistent/dot")
    assert res.returncode == 2, res.stdout[-4000:]
    assert "Graphviz's /nonexistent/dot does not run on the controller" in res.stdout
    assert "apt-get install graphviz" in res.stdout
    assert "Read the overlay state of every host" not in res.stdout
    assert not out.exists()
