# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the functional test's ping plan and reachability matrix (plain data)."""

from __future__ import annotations

import pytest

from ansible_collections.netfleet.overlay.plugins.plugin_utils.reachability import (
    REPLY,
    SELF,
    SILENT,
    UNTESTED,
    WRONG,
    ReachabilityError,
    parse_results,
    plan_pings,
    reachability_matrix,
)


def ep(network, ip, netns=None):
    return {"network": network, "ip": ip, **({"netns": netns} if netns else {})}


def lab():
    """The demo lab: two networks over three hosts, two endpoints of one network on h3."""
    return {
        "h1": {"hosta": ep("overlay_network", "10.213.0.2"), "web1": ep("backend", "10.214.0.2")},
        "h2": {"hostb": ep("overlay_network", "10.213.0.3"), "web2": ep("backend", "10.214.0.3")},
        "h3": {
            "hostc": ep("overlay_network", "10.213.0.4"),
            "hostd": ep("overlay_network", "10.213.0.5"),
            "db": ep("backend", "10.214.0.10"),
        },
    }


def perfect(plan, flip=(), drop_hosts=()):
    """Outputs as a healthy fleet answers; ``flip`` pairs answer the other way."""
    outputs = {}
    for host, pings in plan["pings"].items():
        if host in drop_hosts:
            continue
        lines = []
        for p in pings:
            replied = p["expect"] != ((p["src"], p["dst"]) in flip)
            lines.append(f"{p['src']} {p['dst']} {p['ip']} {'ok' if replied else 'fail'}")
        outputs[host] = "\n".join(lines) + "\n"
    return outputs


def grid(result):
    """The cells of the matrix, row by row, without labels or bars."""
    rows = []
    for line in result["lines"]:
        words = line.replace("│", "").split()
        if len(words) > 3 and words[0].isdigit():
            rows.append("".join(words[3:]))
    return rows


def test_plan_every_ordered_pair_once():
    plan = plan_pings(lab())
    pairs = [(p["src"], p["dst"]) for pings in plan["pings"].values() for p in pings]
    assert len(pairs) == 7 * 6 == len(set(pairs))
    assert sum(p["expect"] for pings in plan["pings"].values() for p in pings) == 3 * 2 + 4 * 3
    assert [e["label"] for e in plan["endpoints"]] == [
        "h1/web1",
        "h2/web2",
        "h3/db",
        "h1/hosta",
        "h2/hostb",
        "h3/hostc",
        "h3/hostd",
    ]
    assert all(p["src"].startswith(f"{host}/") for host, pings in plan["pings"].items() for p in pings)
    assert plan["missing"] == []


def test_plan_stdin_lines_and_netns():
    plan = plan_pings({"h1": {"a": ep("n", "10.0.0.2", netns="ns-a")}, "h2": {"b": ep("n", "10.0.0.3")}})
    assert plan["stdin"] == {"h1": "h1/a h2/b ns-a 10.0.0.3\n", "h2": "h2/b h1/a b 10.0.0.2\n"}
    assert plan["pings"]["h1"] == [{"src": "h1/a", "dst": "h2/b", "netns": "ns-a", "ip": "10.0.0.3", "expect": True}]


def test_hosts_without_endpoints_or_facts():
    plan = plan_pings({"h1": {"a": ep("n", "10.0.0.2")}, "h2": {}, "h3": None})
    assert plan["pings"] == {"h1": [], "h2": [], "h3": []}
    assert plan["stdin"]["h1"] == ""


def test_missing_declared_endpoints():
    declared = {
        "h1": [{"name": "hosta", "network": "overlay_network"}, {"name": "gone", "network": "overlay_network"}],
        "h2": [{"name": "hostb", "network": "backend"}],  # on another network in the kernel
        "h3": [],
    }
    plan = plan_pings(lab(), declared)
    assert plan["missing"] == ["h1/gone", "h2/hostb"]
    result = reachability_matrix(plan, perfect(plan))
    assert not result["ok"]
    assert result["wrong"] == []
    assert result["lines"][-1] == "2 declared endpoint(s) missing from the facts: h1/gone, h2/hostb"


def test_matrix_all_good():
    plan = plan_pings(lab())
    result = reachability_matrix(plan, perfect(plan))
    assert result["ok"] is True
    assert result["counts"] == {"endpoints": 7, "pings": 42, "replies": 18, "wrong": 0}
    assert result["lines"][0] == "Reachability OK: 7 endpoints, 42 pings, 18 replies, 0 wrong"
    r, s, x = REPLY, SILENT, SELF
    assert grid(result) == [
        x + r + r + s * 4,
        r + x + r + s * 4,
        r + r + x + s * 4,
        s * 3 + x + r * 3,
        s * 3 + r + x + r * 2,
        s * 3 + r * 2 + x + r,
        s * 3 + r * 3 + x,
    ]
    header = next(line for line in result["lines"] if line.startswith("source"))
    assert header.split() == ["source", "network", "1", "2", "3", "│", "4", "5", "6", "7"]
    assert "1 h1/web1   backend" in result["text"]


def test_matrix_marks_wrong_cells_both_ways():
    plan = plan_pings(lab())
    flip = {("h2/hostb", "h1/hosta"), ("h1/web1", "h3/hostd")}
    result = reachability_matrix(plan, perfect(plan, flip=flip))
    assert not result["ok"]
    assert result["lines"][0].startswith("Reachability FAILED")
    assert {(w["src"], w["dst"], w["expect"], w["replied"]) for w in result["wrong"]} == {
        ("h2/hostb", "h1/hosta", True, False),
        ("h1/web1", "h3/hostd", False, True),
    }
    rows = grid(result)
    assert rows[4][3] == WRONG  # h2/hostb -> h1/hosta
    assert rows[0][6] == WRONG  # h1/web1 -> h3/hostd
    assert "  ✗ h2/hostb -> h1/hosta (10.213.0.2): no reply, expected one (same network)" in result["lines"]
    assert "  ✗ h1/web1 -> h3/hostd (10.213.0.5): reply across networks" in result["lines"]


def test_matrix_untested_cells_are_wrong_and_folded():
    plan = plan_pings(lab())
    result = reachability_matrix(plan, perfect(plan, drop_hosts={"h3"}))
    assert not result["ok"]
    assert result["counts"]["wrong"] == 3 * 6
    assert set(grid(result)[2].replace(SELF, "")) == {UNTESTED}
    assert "  ? h3/db -> 6 endpoint(s): not tested (no ping output from h3 for them)" in result["lines"]


def test_endpoint_without_address_is_untested_as_destination():
    eps = {"h1": {"a": ep("n", "10.0.0.2")}, "h2": {"b": ep("n", None)}}
    plan = plan_pings(eps)
    assert plan["pings"]["h1"] == []
    result = reachability_matrix(plan, perfect(plan))
    assert [(w["src"], w["dst"], w["replied"]) for w in result["wrong"]] == [("h1/a", "h2/b", None)]


def test_outputs_may_be_registered_results_and_garbage_is_ignored():
    plan = plan_pings({"h1": {"a": ep("n", "10.0.0.2")}, "h2": {"b": ep("n", "10.0.0.3")}})
    outputs = {
        "h1": {"rc": 0, "stdout": "noise\nh1/a h2/b 10.0.0.3 ok\n"},
        "h2": {"skipped": True},
        "h3": None,
    }
    assert parse_results(outputs) == {("h1/a", "h2/b"): True}
    outputs["h2"] = {"stdout": "h2/b h1/a 10.0.0.2 ok"}
    assert reachability_matrix(plan, outputs)["ok"]


def test_long_lists_are_cut():
    eps = {f"h{k}": {f"e{k}": ep("n", f"10.0.{k}.2")} for k in range(12)}
    plan = plan_pings(eps)
    result = reachability_matrix(plan, {h: text.replace(" ok", " fail") for h, text in perfect(plan).items()})
    assert result["counts"]["wrong"] == 12 * 11
    assert result["lines"][-1] == f"  ... and {12 * 11 - 40} more"
    # two-digit columns stay aligned
    header = next(line for line in result["lines"] if line.startswith("source"))
    row = next(line for line in result["lines"] if line.startswith(" 1 "))
    assert len(header) == len(row)


def test_empty_fleet():
    result = reachability_matrix(plan_pings({}), {})
    assert result["ok"]
    assert result["lines"] == ["Reachability OK: 0 endpoints, 0 pings, 0 replies, 0 wrong", "(no endpoints)"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: plan_pings([]), "endpoints must be a dict of hostname -> endpoints, got list"),
        (lambda: plan_pings({"h1": []}), "host h1: endpoints must be a dict of name -> endpoint"),
        (lambda: plan_pings({"h1": {"a": 1}}), "host h1: endpoint 'a' must be a dict, got int"),
        (lambda: plan_pings({}, {"h1": ["a"]}), "host h1: declared endpoint 'a' must be a dict with a name"),
        (lambda: reachability_matrix({}, {}), "the ping plan must be what the ping_plan filter returned"),
        (lambda: reachability_matrix(plan_pings({}), []), "outputs must be a dict of hostname -> ping output"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ReachabilityError) as info:
        call()
    assert str(info.value).startswith(message)


# --- the egress and names checks (issue 14) ----------------------------------------------------------------------

NETWORKS = [
    {"name": "overlay_network", "vni": 256, "subnet": "10.213.0.0/24"},
    {"name": "backend", "vni": 300, "subnet": "10.214.0.0/24", "egress": True, "dns": "yes"},
]
TARGET = "198.18.0.1"


def answer(plan, host, wrong=None):
    """A host's check output as a healthy fleet answers it; ``wrong`` maps a (kind, src) to another answer."""
    lines = []
    for c in plan["checks"][host]:
        good = "ok" if c["kind"] == "egress" else c["address"]
        lines.append(f"{c['kind']} {c['src']} {c['target']} {(wrong or {}).get((c['kind'], c['src']), good)}")
    return "\n".join(lines) + "\n"


def report(plan, wrong=None, drop_hosts=()):
    checks = {host: answer(plan, host, wrong) for host in plan["checks"] if host not in drop_hosts}
    return reachability_matrix(plan, perfect(plan), checks)


def test_checks_are_planned_for_the_networks_that_have_them():
    plan = plan_pings(lab(), networks=NETWORKS, egress_target=TARGET)
    assert plan["egress"] == {"networks": ["backend"], "target": TARGET}
    assert plan["names"] == {"networks": ["backend"], "unchecked": []}
    # every backend endpoint checks both; overlay_network's endpoints check nothing
    assert plan["checks"]["h1"] == [
        {"kind": "egress", "src": "h1/web1", "netns": "web1", "target": TARGET},
        {
            "kind": "name",
            "src": "h1/web1",
            "netns": "web1",
            "target": "web2",
            "peer": "h2/web2",
            "address": "10.214.0.3",
        },
    ]
    # the peer is the next endpoint of the network on another host, wrapping around
    assert [(c["src"], c["peer"]) for h in ("h2", "h3") for c in plan["checks"][h] if c["kind"] == "name"] == [
        ("h2/web2", "h3/db"),
        ("h3/db", "h1/web1"),
    ]
    assert plan["checks_stdin"]["h3"] == f"egress h3/db db {TARGET}\nname h3/db db web1\n"


def test_the_peer_is_on_another_host_when_there_is_one_and_itself_when_alone():
    eps = {
        "h1": {"a": ep("n", "10.0.0.2"), "b": ep("n", "10.0.0.3"), "solo": ep("m", "10.1.0.2", netns="user")},
        "h2": {"c": ep("n", "10.0.0.4")},
    }
    nets = [{"name": "n", "dns": True}, {"name": "m", "dns": True}]
    plan = plan_pings(eps, networks=nets)
    peers = {c["src"]: c["peer"] for cs in plan["checks"].values() for c in cs}
    assert peers == {"h1/a": "h2/c", "h1/b": "h2/c", "h2/c": "h1/a", "h1/solo": "h1/solo"}
    assert plan["checks_stdin"]["h1"].splitlines()[0] == "name h1/solo user solo"  # its netns, and its own name


def test_all_checks_passing_are_reported_below_the_matrix():
    plan = plan_pings(lab(), networks=NETWORKS, egress_target=TARGET)
    result = report(plan)
    assert result["ok"] is True
    assert result["lines"][-4:] == [
        "",
        f"Egress OK: 3 of 3 endpoint(s) of backend reach {TARGET}",
        "",
        "Names OK: 3 of 3 endpoint(s) of backend resolve a peer of their network",
    ]
    assert result["egress"] == {"networks": ["backend"], "target": TARGET, "skipped": None, "checks": 3, "wrong": []}
    assert result["names"] == {"networks": ["backend"], "unchecked": [], "checks": 3, "wrong": []}


def test_a_failed_check_names_the_host_the_endpoint_and_the_target():
    plan = plan_pings(lab(), networks=NETWORKS, egress_target=TARGET)
    wrong = {("egress", "h2/web2"): "fail", ("name", "h1/web1"): "-", ("name", "h3/db"): "10.214.0.9,10.214.0.2"}
    result = report(plan, wrong)
    assert result["ok"] is False
    assert result["wrong"] == []  # the matrix itself is fine
    text = result["lines"]
    assert f"Egress FAILED: 2 of 3 endpoint(s) of backend reach {TARGET}" in text
    assert f"  ✗ h2/web2 -> {TARGET}: no reply" in text
    assert "Names FAILED: 1 of 3 endpoint(s) of backend resolve a peer of their network" in text
    assert "  ✗ h1/web1 -> web2: did not resolve, expected 10.214.0.3 (h2/web2)" in text
    assert "  ✗ h3/db -> web1: resolved to 10.214.0.9 10.214.0.2, expected 10.214.0.2 (h1/web1)" in text
    assert [w["src"] for w in result["names"]["wrong"]] == ["h1/web1", "h3/db"]


def test_a_check_without_output_is_not_tested_and_fails():
    plan = plan_pings(lab(), networks=NETWORKS, egress_target=TARGET)
    result = report(plan, drop_hosts={"h3"})
    assert not result["ok"]
    assert f"  ✗ h3/db -> {TARGET}: not tested (no check output from h3 for it)" in result["lines"]
    assert "  ✗ h3/db -> web1: not tested (no check output from h3 for it)" in result["lines"]
    # the checks' answers never count as pings, nor the pings as checks
    mixed = reachability_matrix(plan, {**perfect(plan), "h9": answer(plan, "h1")}, {"h1": perfect(plan)["h1"]})
    assert mixed["counts"]["wrong"] == 0
    assert len(mixed["egress"]["wrong"]) == len(mixed["names"]["wrong"]) == 3


def test_an_ipv6_answer_is_compared_as_an_address():
    eps = {"h1": {"a": ep("n", "fd00::2")}, "h2": {"b": ep("n", "fd00::3")}}
    plan = plan_pings(eps, networks=[{"name": "n", "subnet": "fd00::/64", "dns": True}])
    checks = {"h1": "name h1/a b FD00:0:0::3\n", "h2": "name h2/b a fd00::2\n"}
    assert reachability_matrix(plan, perfect(plan), checks)["ok"]


def test_egress_without_a_target_is_reported_as_skipped():
    plan = plan_pings(lab(), networks=NETWORKS, egress_target="")
    assert plan["egress"]["target"] is None
    assert all(c["kind"] == "name" for cs in plan["checks"].values() for c in cs)
    result = report(plan)
    assert result["ok"]
    assert result["egress"]["skipped"] == "overlay_verify_egress_target is not set"
    assert "Egress SKIPPED: overlay_verify_egress_target is not set (networks with egress: backend)" in result["lines"]


def test_no_section_for_a_feature_that_no_network_has():
    plan = plan_pings(lab(), networks=[{"name": "backend", "egress": False, "dns": "no"}], egress_target=TARGET)
    assert plan["checks_stdin"] == {"h1": "", "h2": "", "h3": ""}
    result = reachability_matrix(plan, perfect(plan))
    assert result["ok"]
    assert not any(line.startswith(("Egress", "Names")) for line in result["lines"])


@pytest.mark.parametrize(
    ("networks", "target", "message"),
    [
        ({"name": "n"}, None, "networks must be a list like overlay_networks, got dict"),
        ([{"vni": 5}], None, "networks[0] must be a dict with a name"),
        ([{"name": "n", "dns": "maybe"}], None, "network 'n': dns 'maybe' is not a boolean"),
        (NETWORKS, "gateway", "overlay_verify_egress_target 'gateway' is not an IP address"),
        (NETWORKS, "10.214.0.1", "overlay_verify_egress_target 10.214.0.1 is in the subnet 10.214.0.0/24 of overlay"),
        ([], "10.213.0.4", "overlay_verify_egress_target 10.213.0.4 is the address of endpoint h3/hostc"),
    ],
)
def test_bad_networks_or_target(networks, target, message):
    with pytest.raises(ReachabilityError) as info:
        plan_pings(lab(), networks=networks, egress_target=target)
    assert str(info.value).startswith(message)


def test_bad_checks_output():
    with pytest.raises(ReachabilityError, match=r"^checks must be a dict of hostname -> check output, got list"):
        reachability_matrix(plan_pings({}), {}, [])


def test_an_attached_endpoint_checks_egress_and_is_a_peer_but_resolves_nothing():
    """The collection writes no resolv.conf into a netns of the user's: the report says it did not check it."""
    eps = lab()
    eps["h1"]["app1"] = {"network": "backend", "ip": "10.214.0.20", "netns": "podman-app1", "attached": True}
    plan = plan_pings(eps, networks=NETWORKS, egress_target=TARGET)
    assert plan["names"]["unchecked"] == ["h1/app1"]
    assert plan["checks"]["h1"][0] == {"kind": "egress", "src": "h1/app1", "netns": "podman-app1", "target": TARGET}
    assert not [c for c in plan["checks"]["h1"] if c["kind"] == "name" and c["src"] == "h1/app1"]
    assert [c["peer"] for c in plan["checks"]["h3"] if c["kind"] == "name"] == ["h1/app1"]  # the ring wraps to it
    result = report(plan)
    assert result["ok"]
    assert result["lines"][-2:] == [
        "Names OK: 3 of 3 endpoint(s) of backend resolve a peer of their network",
        "  not checked (attached to a netns of the user's, whose resolv.conf is the user's to point at the gateway):"
        " h1/app1",
    ]
