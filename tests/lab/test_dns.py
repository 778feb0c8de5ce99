# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Names on the demo fleet (issue 14, ``dns: true``): a dnsmasq per network and host, found with ``getent``.

Both demo networks get ``dns: true`` and the backend endpoints explicit addresses. Inside each endpoint
(``ip netns exec <ep> getent hosts``) every endpoint of its network resolves as ``<ep>`` and ``<ep>.<network>`` to
its address, and no name of the other network resolves. ``--check`` predicts the first run and changes nothing; a
second run is changed=0. One run that adds, removes and moves endpoints updates the names on every host, while
each host's dnsmasq keeps its pid (SIGHUP, no restart). Turning dns off on one network stops its servers and takes
its endpoints' resolv.conf away; teardown leaves no dnsmasq, no resolv.conf and no DNS file, and every host's
kernel as before the first run. The server killed and restarted by the next run is a case of
test_reliability_drift.py.
"""

from __future__ import annotations

import pytest
from lab_helpers import needs_root
from reliability_helpers import HOSTS, demo_lab, snapshot_diff

pytestmark = [pytest.mark.lab, needs_root]

NETWORKS = """overlay_networks:
  - name: overlay_network
    vni: 256
    subnet: 10.213.0.0/24
    dns: {front}
  - name: backend
    vni: 300
    subnet: 10.214.0.0/24
    dns: true
"""


def endpoint(name: str, network: str, address: str | None = None) -> str:
    return f"  - name: {name}\n    network: {network}\n" + (f"    address: {address}\n" if address else "")


def overrides(placement: dict, front_dns: bool = True) -> dict:
    """host_vars of each host: the networks (dns on backend, and on overlay_network unless ``front_dns`` is off)
    and its endpoints, ``{host: [(name, network, address or None)]}``."""
    networks = NETWORKS.format(front=str(front_dns).lower())
    return {
        host: networks + "overlay_endpoints:\n" + "".join(endpoint(*ep) for ep in placement[host]) for host in HOSTS
    }


FIRST = {
    "h1": [("hosta", "overlay_network", None), ("web1", "backend", "10.214.0.21")],
    "h2": [("hostb", "overlay_network", None), ("web2", "backend", "10.214.0.22")],
    "h3": [("hostc", "overlay_network", None), ("hostd", "overlay_network", None), ("db", "backend", "10.214.0.10")],
}
# one run: web1 (h1) removed, web3 (h3) added, db moved from h3 to h1
CHANGED = {
    "h1": [("hosta", "overlay_network", None), ("db", "backend", "10.214.0.10")],
    "h2": [("hostb", "overlay_network", None), ("web2", "backend", "10.214.0.22")],
    "h3": [("hostc", "overlay_network", None), ("hostd", "overlay_network", None), ("web3", "backend", "10.214.0.23")],
}
FRONT = ("hosta", "hostb", "hostc", "hostd")  # overlay_network's endpoints in both placements

SERVERS = "/run/netfleet-overlay-dns"
PIDS = "/run/netfleet-overlay"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    for fleet in demo_lab(tmp_path_factory, "dns"):
        fleet.pristine = fleet.snapshot()
        yield fleet


def play_ok(fleet, *args: str, placement: dict, front_dns: bool = True):
    res, recap, changed = fleet.play("site.yml", *args, overrides=overrides(placement, front_dns))
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]
    return res, recap, changed


def getent(fleet, host: str, endpoint: str, name: str) -> str | None:
    """The address ``name`` resolves to inside ``endpoint`` on ``host``, or None."""
    res = fleet.lab.exec(host, "ip", "netns", "exec", endpoint, "getent", "hosts", name)
    return res.stdout.split()[0] if res.returncode == 0 and res.stdout.strip() else None


def where(placement: dict) -> dict:
    """``{endpoint: (host, network, address or None)}``."""
    return {name: (host, net, address) for host, eps in placement.items() for name, net, address in eps}


def check_names(fleet, placement: dict, gone=()) -> list[str]:
    """From every backend endpoint: every backend endpoint resolves (both names) to its address; the endpoints
    in ``gone`` and every overlay_network endpoint do not. From hosta: hostb resolves, no backend name does."""
    problems = []
    eps = where(placement)
    backend = {name: info for name, info in eps.items() if info[1] == "backend"}
    for asker, (host, _net, _address) in sorted(backend.items()):
        for name, (_host, _net, address) in sorted(backend.items()):
            for query in (name, f"{name}.backend"):
                got = getent(fleet, host, asker, query)
                if got != address:
                    problems.append(f"{host}/{asker}: {query} -> {got}, expected {address}")
        for query in [*gone, *(f"{name}.backend" for name in gone), "hosta", "hostb", "hostb.overlay_network"]:
            got = getent(fleet, host, asker, query)
            if got is not None:
                problems.append(f"{host}/{asker}: {query} -> {got}, expected no answer")
    hosta_host = eps["hosta"][0]
    if getent(fleet, hosta_host, "hosta", "hostb.overlay_network") != "10.213.0.3":
        problems.append("hosta: hostb.overlay_network does not resolve to 10.213.0.3")
    for query in ("web2", "web2.backend"):
        if getent(fleet, hosta_host, "hosta", query) is not None:
            problems.append(f"hosta: {query} (another network) resolves")
    return problems


def pids(fleet) -> dict:
    """``{(host, vni file): pid record}`` of every host."""
    found = {}
    for host in HOSTS:
        out = fleet.sh(host, f'cd {PIDS} && for f in dns-*.pid; do [ -e "$f" ] && echo "$f $(cat $f)"; done; true')
        for line in out.splitlines():
            name, pid, _start = line.split()
            found[(host, name)] = int(pid)
    return found


def dnsmasq_processes(fleet, host: str) -> list[str]:
    """The command lines of the dnsmasq processes in ``host``'s pid namespace (read there, with ps)."""
    out = fleet.sh(host, "ps -ww -eo stat=,args= | grep '[d]nsmasq' | grep -v '^Z' || true")
    return [line for line in out.splitlines() if line.strip()]


def test_check_predicts_the_first_run_and_names_resolve(fleet):
    before = fleet.snapshot()
    check, _recap, predicted = play_ok(fleet, "--check", placement=FIRST)
    assert fleet.snapshot() == before, "check mode changed the kernel"
    for host in HOSTS:
        assert f"{host}: " in check.stdout and "dns (started ovl-256, ovl-300; resolv.conf +" in check.stdout
        written = f"ls -A {SERVERS} 2>/dev/null; ls -A /etc/netns 2>/dev/null; ls {PIDS} 2>/dev/null | grep dns-"
        assert fleet.sh(host, written + " || true").strip() == "", host
    real, _recap, changed = play_ok(fleet, placement=FIRST)
    assert predicted == changed == list(HOSTS), (predicted, changed)
    for host in HOSTS:
        line = next(line for line in real.stdout.splitlines() if line.startswith(f"{host}: "))
        assert "dns (started ovl-256, ovl-300; resolv.conf +" in line, line
    problems = check_names(fleet, FIRST)
    assert not problems, "\n".join(problems)


def test_resolv_conf_names_the_gateway_and_a_second_run_changes_nothing(fleet):
    text = fleet.sh("h1", "cat /etc/netns/web1/resolv.conf")
    assert "nameserver 10.214.0.1" in text.splitlines() and text.startswith("# netfleet.overlay:"), text
    assert "nameserver 10.213.0.1" in fleet.sh("h1", "cat /etc/netns/hosta/resolv.conf")
    assert len(dnsmasq_processes(fleet, "h1")) == 2, dnsmasq_processes(fleet, "h1")
    _res, recap, changed = play_ok(fleet, placement=FIRST)
    assert changed == [] and all(counts["changed"] == 0 for counts in recap.values()), recap


def test_names_follow_endpoints_added_removed_and_moved_in_one_run_without_a_restart(fleet):
    before = pids(fleet)
    assert sorted(before) == [(h, f"dns-{vni}.pid") for h in HOSTS for vni in (256, 300)], before
    res, _recap, changed = play_ok(fleet, placement=CHANGED)
    assert changed == list(HOSTS), changed
    for host in HOSTS:
        line = next(line for line in res.stdout.splitlines() if line.startswith(f"{host}: "))
        assert "dns (reloaded ovl-300" in line and "started" not in line, line
    assert pids(fleet) == before  # SIGHUP re-read the names: no restart on any host
    problems = check_names(fleet, CHANGED, gone=("web1",))
    assert not problems, "\n".join(problems)
    # db's resolv.conf moved with it; web1's went with web1
    assert fleet.sh("h1", "ls /etc/netns").split() == ["db", "hosta"]
    assert fleet.sh("h3", "ls /etc/netns").split() == ["hostc", "hostd", "web3"]
    _res, recap, changed = play_ok(fleet, placement=CHANGED)
    assert changed == [], recap


def test_dns_off_stops_that_networks_servers_and_takes_its_resolv_conf(fleet):
    res, _recap, changed = play_ok(fleet, placement=CHANGED, front_dns=False)
    assert changed == list(HOSTS), changed
    assert "dns (stopped ovl-256; resolv.conf +0 -1)" in res.stdout, res.stdout[-3000:]
    for host in HOSTS:
        processes = dnsmasq_processes(fleet, host)
        assert len(processes) == 1 and f"{SERVERS}/300.conf" in processes[0], processes
        assert fleet.sh(host, f"ls {SERVERS}").split() == ["300.conf", "300.hosts"]
    assert fleet.sh("h3", "ls /etc/netns").split() == ["web3"]
    assert getent(fleet, "h1", "hosta", "hostb") is None  # no resolv.conf: the host's own resolver, no such name
    assert getent(fleet, "h1", "db", "web3") == "10.214.0.23"


def test_teardown_leaves_no_dns_server_or_file(fleet):
    res, _recap, _changed = fleet.play("teardown.yml", overrides=overrides(CHANGED, False))
    assert res.returncode == 0, res.stdout[-4000:]
    for host in HOSTS:
        assert dnsmasq_processes(fleet, host) == [], host
        leftovers = fleet.sh(host, f"ls -d {SERVERS} /etc/netns/* {PIDS}/dns-* 2>/dev/null || true")
        assert leftovers.strip() == "", f"{host}: {leftovers}"
    after = fleet.snapshot()
    assert after == fleet.pristine, snapshot_diff(fleet.pristine, after)
