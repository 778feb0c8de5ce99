# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Encrypted networks (issue 16): WireGuard peers that follow the fleet, a rebooted host, and check mode.

The demo fleet of 3 lab hosts with ``overlay_network`` (VNI 256) encrypted and ``backend`` (VNI 300) not, as in
test_wireguard.py (its fixture, runs, pingers and readers are reused here). In order:

- membership: h1 (hosta) and h2 (hostb) share the encrypted network and ping each other at 100/s in both
  directions through a run in which h3 gets endpoints on it (hostc, hostd: h3 becomes everyone's WireGuard peer
  in that run and reaches both), then through a run in which they go again (h3 drops out of h1's and h2's peers,
  and wg-overlay, ovl-wg, wireguard-go and the keys go from h3, which has no encrypted network left). Between h1
  and h2 no packet may be lost in either run; ``wg show`` on every host names exactly its peers after each run;
- a rebooted host (``netfleet-lab reboot``: everything in it is gone, /run and its key too) gets a new key pair
  in the next run, and every peer takes its new public key in that same run; pings cross; then changed=0;
- ``--check`` predicts a run that changes the encrypted network's membership (the same hosts change, and the
  check changes nothing: no key, link or entry), and after a no-change converge ``--check`` reports changed=0.
"""

from __future__ import annotations

import json

import pytest
import test_wireguard
import yaml
from lab_helpers import needs_root
from reliability_helpers import HOSTS, snapshot_diff
from support.demo_fleet import LAB_VARS, VTEP
from test_wireguard import (
    ENC,
    ON,
    STATE,
    daemons,
    link,
    networks,
    pinging,
    play,
    reaches,
)

from ansible_collections.netfleet.overlay.plugins.module_utils._model import (
    WIREGUARD_IFNAME,
    WIREGUARD_NETNS,
    WIREGUARD_PORT,
)

pytestmark = [pytest.mark.lab, needs_root]

fleet = test_wireguard.fleet  # the module-scoped fixture: a lab of its own for this file

STAY = (("hosta", "hostb"), ("hostb", "hosta"))  # h1 <-> h2: the peers that stay


def _without_encrypted_endpoints(host: str) -> str:
    """The host's demo endpoints minus those on the encrypted network, with the networks of ``ON`` (YAML)."""
    demo = yaml.safe_load((LAB_VARS / "host_vars" / f"{host}.yml").read_text(encoding="utf-8"))
    endpoints = [ep for ep in demo["overlay_endpoints"] if ep["network"] != "overlay_network"]
    return json.dumps({**json.loads(networks(True)), "overlay_endpoints": endpoints})


H3_OUT = {**ON, "h3": _without_encrypted_endpoints("h3")}  # h3 keeps backend (db) only


def wg_show(fleet, host: str) -> dict | None:
    """What ``wg show`` says about the host's wg-overlay (never its private key): its public key and
    ``{peer public key: (endpoint, allowed ips)}``; None when the host has no wg-overlay."""
    if link(fleet, host, WIREGUARD_NETNS, WIREGUARD_IFNAME) is None:
        return None
    wg = f"ip netns exec {WIREGUARD_NETNS} wg show {WIREGUARD_IFNAME}"
    public = fleet.sh(host, f"{wg} public-key").strip()
    endpoints = dict(line.split("\t") for line in fleet.sh(host, f"{wg} endpoints").splitlines() if line)
    allowed = dict(line.split("\t") for line in fleet.sh(host, f"{wg} allowed-ips").splitlines() if line)
    assert set(endpoints) == set(allowed), (host, endpoints, allowed)
    return {"public_key": public, "peers": {key: (endpoints[key], allowed[key]) for key in endpoints}}


def tunnel_address(fleet, host: str) -> str:
    out = fleet.sh(host, f"ip -n {WIREGUARD_NETNS} -j addr show {WIREGUARD_IFNAME}")
    return json.loads(out)[0]["addr_info"][0]["local"]


def check_peers(fleet, members: tuple[str, ...]) -> dict:
    """Every member's wg-overlay holds exactly the other members (key, VTEP:port, tunnel address/32); a host
    outside has no tunnel, netns, daemon or key left. Returns ``{member: public key}``."""
    shown = {host: wg_show(fleet, host) for host in HOSTS}
    keys = {host: shown[host]["public_key"] for host in members if shown[host]}
    assert set(keys) == set(members), f"members without wg-overlay: {set(members) - set(keys)}"
    address = {host: tunnel_address(fleet, host) for host in members}
    for host in members:
        want = {
            keys[peer]: (f"{VTEP[peer]}:{WIREGUARD_PORT}", f"{address[peer]}/32") for peer in members if peer != host
        }
        assert shown[host]["peers"] == want, (host, shown[host]["peers"], want)
        print(f"wg show on {host} ({address[host]}): {len(want)} peers, {sorted(shown[host]['peers'].values())}")
    for host in set(HOSTS) - set(members):
        assert shown[host] is None, f"{host} has no encrypted network but still a wg-overlay"
        assert daemons(fleet, host) == [], f"{host}: wireguard-go left"
        left = fleet.sh(host, f"ls -d {STATE} /run/netns/{WIREGUARD_NETNS} 2>/dev/null || true").strip()
        assert left == "", f"{host}: no encrypted network left, but {left}"
        print(f"wg show on {host}: no wg-overlay, no ovl-wg, no key, no daemon")
    return keys


def assert_no_loss(figures: dict, phase: str) -> None:
    for label, (sent, lost) in figures.items():
        assert sent > 300, f"{phase}: {label}: only {sent} pings sent"
        assert lost == 0, f"{phase}: {label} lost {lost} of {sent} at 100/s (a peer that stays was interrupted)"


# --- the tests --------------------------------------------------------------------------------------------------


def test_peers_follow_membership_in_the_same_run_without_interrupting_those_that_stay(fleet):
    _res, _recap, changed = play(fleet, H3_OUT, what="the run with h1 and h2 encrypted")
    assert changed == sorted(HOSTS), changed  # h3 is on backend
    check_peers(fleet, ("h1", "h2"))
    assert reaches(fleet, "hosta", "hostb")

    with pinging(fleet, STAY, "h3 joins") as joined:
        _res, _recap, changed = play(fleet, ON, what="the run in which h3 joins the encrypted network")
    assert changed == sorted(HOSTS), changed
    keys = check_peers(fleet, HOSTS)
    for src, dst in (("hostc", "hosta"), ("hostd", "hostb"), ("hosta", "hostc")):
        assert reaches(fleet, src, dst), f"{src} does not reach {dst} after h3 joined"
    assert_no_loss(joined, "h3 joins")

    with pinging(fleet, STAY, "h3 leaves") as left:
        _res, _recap, changed = play(fleet, H3_OUT, what="the run in which h3 leaves the encrypted network")
    assert changed == sorted(HOSTS), changed
    assert check_peers(fleet, ("h1", "h2")) == {host: keys[host] for host in ("h1", "h2")}, "h1 or h2 got a new key"
    assert reaches(fleet, "hostb", "hosta") and reaches(fleet, "web1", "db")
    assert_no_loss(left, "h3 leaves")


def test_check_mode_predicts_a_membership_change_and_then_reports_nothing(fleet):
    before = fleet.snapshot()
    _res, recap, predicted = play(fleet, ON, "--check", what="--check of h3 joining")
    after = fleet.snapshot()
    assert after == before, "--check changed the kernel:\n" + snapshot_diff(before, after)
    assert fleet.sh("h3", f"ls -d {STATE} 2>/dev/null || true").strip() == "", "--check made h3 a key"
    assert daemons(fleet, "h3") == [], "--check started wireguard-go on h3"
    _res, real, changed = play(fleet, ON, what="the run of h3 joining, after its check")
    print(f"--check predicted {predicted} ({recap}); the run changed {changed} ({real})")
    assert predicted == changed == sorted(HOSTS), (predicted, changed)
    check_peers(fleet, HOSTS)
    _res, recap, changed = play(fleet, ON, what="a converge with nothing to change")
    assert changed == [] and all(c["changed"] == 0 for c in recap.values()), recap
    _res, recap, predicted = play(fleet, ON, "--check", what="--check after a no-change converge")
    assert predicted == [] and all(c["changed"] == 0 for c in recap.values()), recap


def test_a_rebooted_host_gets_a_new_key_pair_and_every_peer_follows_in_one_run(fleet):
    keys = check_peers(fleet, HOSTS)
    res = fleet.lab.tool("reboot", "--dir", str(fleet.lab.dir), "h2")
    assert res.returncode == 0, res.stderr
    assert wg_show(fleet, "h2") is None and fleet.sh("h2", f"ls -d {STATE} 2>/dev/null || true").strip() == ""
    fleet.pristine["h2"] = fleet.snapshot(("h2",))["h2"]  # what a teardown of h2 goes back to now
    _res, _recap, changed = play(fleet, ON, what="the run after h2's reboot")
    assert changed == sorted(HOSTS), changed  # h2 rebuilt; h1 and h3 take its new public key
    after = check_peers(fleet, HOSTS)
    assert after["h2"] != keys["h2"], "h2 kept its public key through a reboot"
    assert {h: after[h] for h in ("h1", "h3")} == {h: keys[h] for h in ("h1", "h3")}, "h1 or h3 changed its key"
    modes = fleet.sh("h2", f"stat -c '%a' {STATE} {STATE}/private.key").split()
    assert modes == ["700", "600"], modes
    for src, dst in (("hostb", "hosta"), ("hostc", "hostb"), ("hosta", "hostd")):
        assert reaches(fleet, src, dst), f"{src} does not reach {dst} after h2's reboot"
    assert link(fleet, "h2", f"ovl-{ENC}", "vxlan0")["linkinfo"]["info_data"]["local"] == tunnel_address(fleet, "h2")
    _res, recap, changed = play(fleet, ON, what="the second run after h2's reboot")
    assert changed == [] and all(c["changed"] == 0 for c in recap.values()), recap
