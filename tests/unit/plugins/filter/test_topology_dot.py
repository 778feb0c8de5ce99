# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the topology's DOT graph (plain data; Graphviz only checks that the text parses)."""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest
import workloads_picture

from ansible_collections.netfleet.overlay.plugins.plugin_utils.topology import (
    TopologyError,
    build_topology,
    html_text,
    natural_key,
    render_dot,
    topology_dot,
)

NETWORKS = [
    {"name": "overlay_network", "vni": 256, "subnet": "10.213.0.0/24"},
    {"name": "backend", "vni": 300, "subnet": "10.214.0.0/24"},
]
VNI = {"overlay_network": 256, "backend": 300}
needs_graphviz = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed (make deps)")


def mac_of(ip: str) -> str:
    return "02:42:" + ":".join(f"{b:02x}" for b in ipaddress.ip_address(ip).packed)


def ep(name, network, ip, prefixlen=24):
    return {"name": name, "netns": name, "network": network, "ip": ip, "prefixlen": prefixlen, "mac": mac_of(ip)}


def host(vtep, *endpoints):
    networks = {e["network"]: {"name": e["network"], "vni": VNI[e["network"]], "port": 4789} for e in endpoints}
    return {
        "vtep": vtep,
        "vtep_dev": "eth0",
        "pyroute2": True,
        "networks": networks,
        "endpoints": {e["name"]: e for e in endpoints},
    }


def demo():
    """The facts of the demo lab: two networks over three hosts, two endpoints of one network on h3."""
    return {
        "h1": host("198.18.1.1", ep("hosta", "overlay_network", "10.213.0.2"), ep("web1", "backend", "10.214.0.2")),
        "h2": host("198.18.1.2", ep("hostb", "overlay_network", "10.213.0.3"), ep("web2", "backend", "10.214.0.3")),
        "h3": host(
            "198.18.1.3",
            ep("hostc", "overlay_network", "10.213.0.4"),
            ep("hostd", "overlay_network", "10.213.0.5"),
            ep("db", "backend", "10.214.0.10"),
        ),
    }


def node_labels(dot: str) -> dict[str, str]:
    """Node ID -> its HTML-like label (without the outer <>)."""
    return dict(re.findall(r"^\s+(\w+) \[.*?label=<(.*)>(?:, color=\"[^\"]*\")?\];$", dot, re.MULTILINE))


def cluster_labels(dot: str) -> list[str]:
    return re.findall(r"graph \[label=<(.*?)>, style=", dot)


def edges(dot: str) -> set[tuple[str, str]]:
    return set(re.findall(r"^\s+(\w+) -> (\w+) ", dot, re.MULTILINE))


def graphviz(dot: str, fmt: str = "svg") -> str:
    res = subprocess.run(["dot", f"-T{fmt}"], input=dot, capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    assert not res.stderr.strip(), res.stderr  # no warnings either: every label parsed
    return res.stdout


# --- the demo fleet ---------------------------------------------------------------------------------------------


def test_every_host_vtep_endpoint_ip_and_mac_is_in_the_graph():
    dot = topology_dot(demo(), NETWORKS)
    clusters = cluster_labels(dot)
    assert len(clusters) == 3
    for index, (name, facts) in enumerate(sorted(demo().items())):
        assert f"<b>{name}</b>" in clusters[index] and f"VTEP {facts['vtep']} (eth0)" in clusters[index]
    labels = node_labels(dot)
    for facts in demo().values():
        for endpoint in facts["endpoints"].values():
            [label] = [text for text in labels.values() if f"<b>{endpoint['name']}</b>" in text]
            assert f"{endpoint['ip']}/24" in label and endpoint["mac"] in label


def test_networks_show_name_vni_and_subnet_in_vni_order():
    labels = node_labels(topology_dot(demo(), NETWORKS))
    assert "<b>overlay_network</b>" in labels["net0"] and "VNI 256<br/>10.213.0.0/24" in labels["net0"]
    assert "<b>backend</b>" in labels["net1"] and "VNI 300<br/>10.214.0.0/24" in labels["net1"]


def test_every_endpoint_has_one_edge_to_its_network():
    dot = topology_dot(demo(), NETWORKS)
    labels = node_labels(dot)
    by_name = {re.search(r"<b>(\w+)</b>", text)[1]: node for node, text in labels.items() if "_ep" in node}
    expected = {
        (by_name[e["name"]], "net0" if e["network"] == "overlay_network" else "net1")
        for facts in demo().values()
        for e in facts["endpoints"].values()
    }
    assert edges(dot) == expected
    assert len(re.findall(r" -> ", dot)) == 7


def test_counts_and_title_head_the_graph():
    dot = topology_dot(demo(), NETWORKS, title="demo <lab>")
    assert "label=<<b>demo &lt;lab&gt;</b><br/>3 hosts, 2 networks, 7 endpoints>" in dot
    assert "label=<1 host, 0 networks, 0 endpoints>" in topology_dot({"h1": host("198.18.1.1")})


def test_output_is_deterministic_whatever_the_order_of_the_input():
    first = topology_dot(demo(), NETWORKS)
    shuffled = {
        name: {**facts, "endpoints": dict(reversed(list(facts["endpoints"].items())))}
        for name, facts in reversed(list(demo().items()))
    }
    assert topology_dot(shuffled, list(reversed(NETWORKS))) == first
    assert topology_dot(demo(), NETWORKS) == first


def test_hosts_sort_naturally():
    facts = {name: host(f"198.18.1.{k}") for k, name in enumerate(("h10", "h2", "h1"), 1)}
    labels = [re.search(r"<b>(\w+)</b>", label)[1] for label in cluster_labels(topology_dot(facts))]
    assert labels == ["h1", "h2", "h10"]
    assert sorted(["h10", "h9", "a"], key=natural_key) == ["a", "h9", "h10"]


# --- escaping ---------------------------------------------------------------------------------------------------


def test_html_text_escapes_markup_and_controls():
    assert html_text("a<b>&\"c'") == "a&lt;b&gt;&amp;&quot;c'"
    assert html_text("x\x00y\nz\x7f") == "x\ufffdy\ufffdz\ufffd"
    assert html_text(42) == "42"


HOSTILE = 'evil"host<b>&amp;</b>\\'


def hostile_facts():
    facts = host("198.18.1.9", ep("web1", "backend", "10.214.0.2"))
    facts["endpoints"] = {'x"<y>&': {**facts["endpoints"]["web1"], "name": 'x"<y>&'}}
    facts["networks"]["backend"]["name"] = "backend"
    return {HOSTILE: facts, "h1": host("198.18.1.1", ep("hosta", "overlay_network", "10.213.0.2"))}


def test_names_never_reach_the_dot_syntax():
    dot = topology_dot(hostile_facts(), [*NETWORKS, {"name": "a}b", "vni": 9, "subnet": "10.9.0.0/24"}])
    assert HOSTILE not in dot and 'x"<y>&' not in dot
    assert "evil&quot;host&lt;b&gt;&amp;amp;&lt;/b&gt;\\" in dot
    assert "x&quot;&lt;y&gt;&amp;" in dot
    # every node ID is one the filter made up
    ids = set(re.findall(r"^\s+(\w+) \[", dot, re.MULTILINE)) - {"graph", "node", "edge"}
    assert ids == {"host0_ep0", "host1_ep0", "net0", "net1"}


@needs_graphviz
def test_hostile_names_come_out_of_graphviz_as_text():
    svg = graphviz(topology_dot(hostile_facts(), NETWORKS, title="t&<>"))
    root = ET.fromstring(svg)
    texts = [el.text for el in root.iter("{http://www.w3.org/2000/svg}text") if el.text]
    assert HOSTILE in texts
    assert 'x"<y>&' in texts
    assert "t&<>" in texts


@needs_graphviz
def test_graphviz_renders_the_demo_without_a_warning():
    dot = topology_dot(demo(), NETWORKS, title="netfleet.overlay")
    svg = ET.fromstring(graphviz(dot))
    texts = {el.text for el in svg.iter("{http://www.w3.org/2000/svg}text")}
    for name, facts in demo().items():
        assert name in texts and f"VTEP {facts['vtep']} (eth0)" in texts
        for endpoint in facts["endpoints"].values():
            assert {f"{endpoint['ip']}/24", endpoint["mac"], endpoint["name"]} <= texts
    png = subprocess.run(["dot", "-Tpng"], input=dot.encode(), capture_output=True, timeout=60, check=True)
    assert png.stdout.startswith(b"\x89PNG\r\n\x1a\n") and not png.stderr


# --- what the facts do not show ---------------------------------------------------------------------------------


def test_hosts_without_facts_or_pyroute2_get_a_note_instead_of_endpoints():
    facts = {"h1": None, "h2": {"vtep": "198.18.1.2", "vtep_dev": "eth0", "pyroute2": False}, "h3": host("198.18.1.3")}
    dot = topology_dot(facts)
    labels = node_labels(dot)
    assert "no overlay facts" in labels["host0_none"]
    assert "endpoints unknown: no pyroute2 on the host" in labels["host1_none"]
    assert "no endpoints" in labels["host2_none"]
    clusters = cluster_labels(dot)
    assert "VTEP unknown" in clusters[0] and "VTEP 198.18.1.2 (eth0)" in clusters[1]


def test_hosts_outside_active_hosts_are_dashed():
    facts = {**demo(), "h4": None}
    dot = topology_dot(facts, NETWORKS, active_hosts=["h1", "h2"])
    assert len(re.findall(r'style="rounded,dashed"', dot)) == 2
    clusters = cluster_labels(dot)
    assert "not reached in this run: cached facts" in clusters[2]
    assert "not reached in this run" in clusters[3] and "cached" not in clusters[3]
    assert "dashed" not in topology_dot(demo(), NETWORKS)


def test_a_host_without_facts_shows_its_inventory_vtep():
    facts = {**demo(), "h3": None}
    vteps = {"h1": "192.0.2.1", "h3": "198.18.1.3"}
    dot = topology_dot(facts, NETWORKS, active_hosts=["h1", "h2"], vteps=vteps)
    clusters = cluster_labels(dot)
    assert "VTEP 198.18.1.1 (eth0)" in clusters[0]  # the facts win
    assert "VTEP 198.18.1.3 (inventory)" in clusters[2] and "not reached in this run" in clusters[2]
    assert "no overlay facts" in node_labels(dot)["host2_none"]
    with pytest.raises(TopologyError, match="vteps must be a dict of hostname -> VTEP address, got list"):
        topology_dot(facts, vteps=["198.18.1.3"])


def test_subnet_and_vni_fall_back_to_what_there_is():
    facts = {
        "h1": host("198.18.1.1", ep("web1", "backend", "10.214.0.2"), ep("hosta", "overlay_network", "10.213.0.9"))
    }
    facts["h1"]["networks"].pop("backend")  # an endpoint whose vxlan device the facts do not show
    topology = build_topology(facts, [{"name": "backend", "vni": 300, "subnet": "10.214.0.0/24"}])
    nets = {n.name: n for n in topology.networks}
    assert nets["backend"].vnis == (300,) and nets["backend"].subnets == ("10.214.0.0/24",)
    assert nets["overlay_network"].subnets == ("10.213.0.0/24",)  # from the endpoint's address and prefix
    labels = node_labels(render_dot(build_topology(facts)))
    assert any("VNI unknown" in text and "10.214.0.0/24" in text for text in labels.values())


def test_ipv6_and_missing_addresses():
    v6 = ep("web6", "backend", "fd00:600::2", prefixlen=64)
    bare = {"name": "lost", "netns": "lost", "network": None, "ip": None, "prefixlen": None, "mac": None}
    facts = {"h1": host("fd00:198:18::1", v6)}
    facts["h1"]["endpoints"]["lost"] = bare
    dot = topology_dot(facts)
    labels = node_labels(dot)
    assert "fd00:600::2/64" in labels["host0_ep1"] and mac_of("fd00:600::2") in labels["host0_ep1"]
    assert "no address" in labels["host0_ep0"] and "no MAC" in labels["host0_ep0"]
    assert "on no network" in labels["host0_ep0"]
    assert "fd00:600::/64" in labels["net0"]
    assert edges(dot) == {("host0_ep1", "net0")}


@pytest.mark.parametrize(
    ("facts", "networks", "message"),
    [
        ([], None, "the input must be a dict of hostname -> facts, got list"),
        ({"h1": "x"}, None, "host h1: the facts must be the dict that netfleet.overlay.overlay_facts returns, got str"),
        ({"h1": {"endpoints": []}}, None, "host h1: endpoints must be a dict of name -> endpoint, got list"),
        ({"h1": {"endpoints": {"a": 1}}}, None, "host h1: endpoint 'a' must be a dict, got int"),
        ({"h1": {"networks": {"n": {"vni": "x"}}}}, None, "host h1: network 'n' vni must be a number, got 'x'"),
        ({}, {"name": "n"}, "networks must be a list like overlay_networks, got dict"),
        ({}, [{"vni": 1}], "networks[0] must be a dict with a name (like overlay_networks), got {'vni': 1}"),
    ],
)
def test_bad_input_names_the_host_and_value(facts, networks, message):
    with pytest.raises(TopologyError) as err:
        topology_dot(facts, networks)
    assert str(err.value) == message


# --- the gateway, the egress path and the DNS server (issue 14) -------------------------------------------------

WORKLOADS = [NETWORKS[0], {**NETWORKS[1], "egress": True, "dns": "yes"}]


def test_every_host_of_a_network_with_egress_and_dns_draws_its_gateway_dns_server_and_egress_path():
    dot = topology_dot(demo(), WORKLOADS)
    labels = node_labels(dot)
    for index, facts in enumerate(sorted(demo().items())):
        gateway = labels[f"host{index}_gw1"]
        assert "<b>gateway of backend</b>" in gateway
        assert "10.214.0.1/24 on br0 in ovl-300" in gateway
        assert "06:00:00:01:2c:01 (anycast)" in gateway  # the same MAC on every host
        assert "DNS server (dnsmasq) on 10.214.0.1:53" in gateway
        nat = labels[f"host{index}_nat"]
        assert f"NAT: masquerade to {facts[1]['vtep']}<br/>out of eth0 to the underlay" in nat
        assert (f"host{index}_gw1", "net1") in edges(dot)
        assert (f"host{index}_gw1", f"host{index}_nat") in edges(dot)
        assert f"host{index}_gw1 -> host{index}_nat" in dot and "label=<egress out of ovl-300>" in dot
    assert not any("_gw0" in node for node in labels)  # overlay_network has neither
    assert len(re.findall(r" -> ", dot)) == 7 + 3 * 2


def test_dns_alone_draws_the_gateway_and_server_without_an_egress_path():
    dot = topology_dot(demo(), [NETWORKS[0], {**NETWORKS[1], "dns": True, "egress": "false"}])
    labels = node_labels(dot)
    assert "DNS server (dnsmasq) on 10.214.0.1:53" in labels["host0_gw1"]
    assert not any(node.endswith("_nat") for node in labels)
    egress_only = node_labels(topology_dot(demo(), [NETWORKS[0], {**NETWORKS[1], "egress": 1}]))
    assert "DNS server" not in egress_only["host0_gw1"] and "host0_nat" in egress_only


def test_a_gateway_is_drawn_only_where_the_facts_show_its_network():
    facts = demo()
    facts["h2"]["networks"].pop("backend")
    labels = node_labels(topology_dot(facts, WORKLOADS))
    assert "host0_gw1" in labels and "host2_gw1" in labels
    assert "host1_gw1" not in labels and "host1_nat" not in labels


def test_an_ipv6_gateway_and_an_unknown_vtep():
    facts = {"h1": host("fd00:198:18::1", ep("web6", "backend", "fd00:600::2", prefixlen=64))}
    facts["h1"]["vtep"] = facts["h1"]["vtep_dev"] = None
    nets = [{"name": "backend", "vni": 300, "subnet": "fd00:600::/64", "egress": True}]
    labels = node_labels(topology_dot(facts, nets))
    assert "fd00:600::1/64 on br0 in ovl-300" in labels["host0_gw0"]
    assert "NAT: masquerade to the underlay address of the host<br/>out to the underlay" in labels["host0_nat"]


def test_an_attached_endpoint_names_its_netns():
    facts = demo()
    facts["h1"]["endpoints"]["app1"] = {**ep("app1", "backend", "10.214.0.20"), "netns": "podman-1", "attached": True}
    labels = node_labels(topology_dot(facts, WORKLOADS))
    assert "attached to netns podman-1" in labels["host0_ep0"]
    assert "attached" not in labels["host0_ep1"]


def test_a_bad_egress_value_names_the_network():
    with pytest.raises(TopologyError, match=r"^networks: 'backend' egress 'often' is not a boolean"):
        topology_dot(demo(), [NETWORKS[0], {**NETWORKS[1], "egress": "often"}])


@needs_graphviz
def test_graphviz_renders_the_gateways_without_a_warning():
    svg = ET.fromstring(graphviz(topology_dot(demo(), WORKLOADS, title="netfleet.overlay")))
    texts = [el.text for el in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert texts.count("gateway of backend") == 3
    assert texts.count("egress out of ovl-300") == 3
    assert "NAT: masquerade to 198.18.1.2" in texts


def test_readmes_workloads_picture_is_what_the_drawing_gives_today():
    """docs/images/workloads-topology.dot is tools/workloads_picture.py's output (make architecture writes it)."""
    assert workloads_picture.DOT.read_text(encoding="utf-8") == workloads_picture.dot_text(), (
        "docs/images/workloads-topology.dot is stale: run make architecture"
    )


@needs_graphviz
def test_readmes_workloads_picture_is_rendered_from_its_source():
    svg = workloads_picture.DOT.with_suffix(".svg")
    rendered = subprocess.run(["dot", "-Tsvg", str(workloads_picture.DOT)], check=True, capture_output=True, text=True)
    assert svg.read_text(encoding="utf-8") == rendered.stdout, f"{svg.name} is stale: run make architecture"
