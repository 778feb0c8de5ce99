# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""overlay_host's report on plain data: the summary line, the purge plan, and the peers it records."""

from __future__ import annotations

from ansible_collections.netfleet.overlay.plugins.module_utils._host import HostConverger


def converger(**params) -> HostConverger:
    return HostConverger({"vtep": "198.18.1.1", "preserve_vteps": [], **params}, check_mode=False)


def net(name: str, netns: str, endpoints=(), fdb=(), peer_hosts=None) -> dict:
    return {
        "name": name,
        "netns": netns,
        "endpoints": [{"name": ep, "netns": ep, "veth": f"veth-{ep}"} for ep in endpoints],
        "fdb": [{"mac": f"02:00:00:00:00:{i:02x}", "dst": dst} for i, dst in enumerate(fdb)],
        "peer_hosts": peer_hosts or {},
    }


OWNED = {
    "networks": {"front": {"name": "front", "netns": "ovl-256"}, "backend": {"name": "backend", "netns": "ovl-300"}},
    "endpoints": {
        "web1": {"name": "web1", "network": "front", "netns": "web1", "veth": "veth-web1"},
        "db": {"name": "db", "network": "backend", "netns": "db", "veth": "veth-db"},
        "moved": {"name": "moved", "network": "backend", "netns": "moved", "veth": "veth-moved"},
    },
}


def test_the_purge_plan_names_what_goes_and_what_moves():
    wanted = [net("front", "ovl-256", ["web1", "web3", "moved"])]
    plan = converger().plan_purge(OWNED, wanted)
    assert plan == {"networks": ["backend"], "endpoints": ["db", "moved"]}


def test_kept_endpoints_and_their_network_stay_and_are_not_reported_removed():
    # pass 1 of a run with moves: db moves to another host, x arrives here; db (and backend, which holds it) stay
    c = converger(keep_endpoints=["db", "unknown"])
    wanted = [net("front", "ovl-256", ["web1", "x"])]
    c.owned = OWNED
    c.to_remove = c.plan_purge(OWNED, wanted)
    assert c.to_remove == {"networks": [], "endpoints": ["moved"]}
    c.progress["endpoints"].update(c.to_remove["endpoints"])
    assert c.summary(wanted) == "+1 endpoint (x), -1 endpoint (moved)"
    # a kept endpoint that the plan still wants on this host in another netns is remade as usual
    wanted = [net("front", "ovl-256", ["web1"]), net("backend", "ovl-300", [])]
    wanted[1]["endpoints"] = [{"name": "db", "netns": "db2", "veth": "veth-db"}]
    assert c.plan_purge(OWNED, wanted) == {"networks": [], "endpoints": ["db", "moved"]}


def test_the_summary_line():
    c = converger()
    wanted = [net("front", "ovl-256", ["web1", "web3", "moved"]), net("new", "ovl-400", ["x"])]
    c.owned = OWNED
    c.to_remove = c.plan_purge(OWNED, wanted)
    c.progress["endpoints"].update(c.to_remove["endpoints"])
    c.progress["networks"].update(c.to_remove["networks"])
    c.touched["endpoints"].add("web1")
    c.tally = {"fdb": [3, 2], "neigh": [3, 0]}
    assert c.summary(wanted) == (
        "+1 network (new), +2 endpoints (web3, x), ~2 endpoints (moved, web1), -1 endpoint (db),"
        " -1 network (backend), fdb +3 -2, arp +3 -0"
    )


def test_a_failed_purge_reports_only_what_went():
    c = converger()
    c.owned = OWNED
    c.to_remove = c.plan_purge(OWNED, [])
    c.progress["endpoints"].add("db")
    assert c.summary([]) == "-1 endpoint (db)"


def test_recorded_peers_keep_known_names():
    """From the input as check_input normalised it (test_host_preflight)."""
    c = converger(preserve_vteps=["2001:db8::9", "198.18.1.7"])
    network = net(
        "front",
        "ovl-256",
        fdb=["198.18.1.2", "198.18.1.2", "2001:db8::3", "198.18.1.1"],
        peer_hosts={"198.18.1.2": "h2"},
    )
    before = {"2001:db8::3": "h3", "2001:db8::9": "h9"}
    assert c._peers(network, before) == {"198.18.1.2": "h2", "2001:db8::3": "h3", "2001:db8::9": "h9"}
