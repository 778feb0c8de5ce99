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
