# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 14's whole feature on one 3-host lab: a network with egress and dns, one without, endpoints on every host
and one attached to a netns of the user's.

In order: ``--check`` predicts the first run (the same hosts change, with the same summaries); the run; verify.yml
passes with an egress target and names (and reports egress as skipped without a target, and fails naming the
endpoint and target when the target does not answer); a second run changes nothing; teardown.yml then leaves every
host as it was before the first run (kernel snapshot: no gateway address, no NAT or forwarding rule, the user's
netns with its content), with no dnsmasq, no resolv.conf and no state file of the feature behind.
"""

from __future__ import annotations

import re

import pytest
from devenv import ansible_env
from lab_helpers import REPO, build_lab, needs_root, run_ansible
from reliability_helpers import CHANGED_RE, RECAP_RE, snapshot, snapshot_diff

pytestmark = [pytest.mark.lab, needs_root]

HOSTS = ("h1", "h2", "h3")
TARGET = "198.18.0.1"  # the lab's switch: on the underlay, not an overlay member
USER_NETNS = "wl-user1"  # the user's netns on h1 that endpoint app1 joins
USER_LO = "192.0.2.55/32"  # what the user has in it: an address on lo (and a veth pair keep0-keep1)
GROUP_VARS = """\
overlay_networks:
  - name: front
    vni: 410
    subnet: 10.231.0.0/24
    egress: true
    dns: true
  - name: back
    vni: 411
    subnet: 10.232.0.0/24
"""
HOST_VARS = {
    "h1": """\
overlay_endpoints:
  - {name: web1, network: front}
  - {name: app1, network: front, netns: wl-user1, interface: ovl0}
  - {name: db1, network: back}
""",
    "h2": """\
overlay_endpoints:
  - {name: web2, network: front}
  - {name: db2, network: back}
""",
    "h3": """\
overlay_endpoints:
  - {name: web3, network: front}
""",
}
# Inside a lab host: the forwarding switches, the files of the collection and of ip netns, and dnsmasq processes.
FILES = r"""
echo "ip_forward $(cat /proc/sys/net/ipv4/ip_forward)"
for knob in /proc/sys/net/ipv4/conf/*/forwarding /proc/sys/net/ipv6/conf/*/forwarding; do
  echo "forwarding $knob $(cat "$knob")"
done
unit=/etc/systemd/system/netfleet-overlay-dns@.service
for path in $(find /run/netfleet-overlay /run/netfleet-overlay-dns /etc/netns "$unit" 2>/dev/null); do
  echo "file $path"
done
for p in /proc/[0-9]*; do
  [ "$(cat "$p/comm" 2>/dev/null)" = dnsmasq ] && echo "dnsmasq ${p#/proc/} $(tr '\0' ' ' < "$p/cmdline")"
done
exit 0
"""
# What a teardown of the collection leaves in its state directory, with or without this feature, and the directories
# that the DNS part leaves behind empty (anything in them would be listed too, and fail).
BASE_STATE = {"/run/netfleet-overlay", "/run/netfleet-overlay/host.lock", "/run/netfleet-overlay/ownership.json"}
EMPTY_DIRS = {"/etc/netns", "/run/netfleet-overlay-dns"}
SUMMARY_RE = re.compile(r"^(h\d+): (.+?)(?: \(check mode\))?$", re.MULTILINE)


class Workloads:
    def __init__(self, lab, env, tmp):
        self.lab = lab
        self.env = env
        self.inventory = tmp / "inventory"
        (self.inventory / "group_vars").mkdir(parents=True)
        (self.inventory / "host_vars").mkdir()
        (self.inventory / "lab.yml").write_text("all:\n  children:\n    lab:\n", encoding="utf-8")
        (self.inventory / "group_vars" / "all.yml").write_text(GROUP_VARS, encoding="utf-8")
        for host, text in HOST_VARS.items():
            (self.inventory / "host_vars" / f"{host}.yml").write_text(text, encoding="utf-8")

    def play(self, playbook: str, *args: str):
        """``(process, {host: changed count}, sorted hosts reported changed, {host: overlay_host summary})``."""
        res = run_ansible(
            self.env,
            "-i",
            str(self.lab.inventory),
            "-i",
            str(self.inventory),
            str(REPO / "playbooks" / playbook),
            *args,
            tool="ansible-playbook",
            timeout=600,
        )
        recap = {m["host"]: int(m["changed"]) for m in RECAP_RE.finditer(res.stdout)}
        summaries = dict(SUMMARY_RE.findall(res.stdout))
        return res, recap, sorted(CHANGED_RE.findall(res.stdout)), summaries

    def sh(self, host: str, script: str) -> str:
        res = self.lab.exec(host, "sh", "-c", script)
        assert res.returncode == 0, f"{host}: {script!r} failed: {res.stderr}"
        return res.stdout

    def files(self) -> dict[str, set[str]]:
        return {host: set(self.sh(host, FILES).splitlines()) for host in HOSTS}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nfl-workloads")
    for lab in build_lab(tmp / "lab", len(HOSTS)):
        fleet = Workloads(lab, ansible_env(tmp), tmp)
        # the user's netns, with content of their own, before the collection ever runs
        fleet.sh(
            "h1",
            f"ip netns add {USER_NETNS} && ip -n {USER_NETNS} link set lo up && ip -n {USER_NETNS} addr add {USER_LO}"
            f" dev lo && ip -n {USER_NETNS} link add keep0 type veth peer name keep1",
        )
        fleet.pristine = snapshot(lab, HOSTS)
        fleet.pristine_files = fleet.files()
        yield fleet


def test_check_mode_predicts_the_first_run(fleet):
    check, _recap, changed, predicted = fleet.play("site.yml", "--check")
    untouched = snapshot(fleet.lab, HOSTS)
    # the real run comes next whatever check mode said, so that the tests after this one have their fleet
    res, _recap, changed_for_real, summaries = fleet.play("site.yml")
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]
    assert all("front" in summaries[host] and "dns (started ovl-410" in summaries[host] for host in HOSTS), summaries
    assert check.returncode == 0, check.stdout[-6000:] + check.stderr[-2000:]
    assert untouched == fleet.pristine, "check mode changed a host:\n" + snapshot_diff(fleet.pristine, untouched)
    assert changed == changed_for_real == list(HOSTS)
    assert predicted == summaries


def test_verify_passes_with_egress_and_names(fleet):
    res, recap, _changed, _summaries = fleet.play("verify.yml", "-e", f"overlay_verify_egress_target={TARGET}")
    assert res.returncode == 0, res.stdout[-8000:]
    assert all(count == 0 for count in recap.values()), recap
    out = res.stdout
    assert "Reachability OK: 6 endpoints" in out
    assert f"Egress OK: 4 of 4 endpoint(s) of front reach {TARGET}" in out
    assert "Names OK: 3 of 3 endpoint(s) of front resolve a peer of their network" in out
    assert "whose resolv.conf is the user's to point at the gateway): h1/app1" in out
    assert "4 egress and 3 name checks: all as expected" in out


def test_verify_says_egress_was_skipped_without_a_target(fleet):
    res, _recap, _changed, _summaries = fleet.play("verify.yml")
    assert res.returncode == 0, res.stdout[-8000:]
    assert "Egress SKIPPED: overlay_verify_egress_target is not set (networks with egress: front)" in res.stdout
    assert "Names OK: 3 of 3" in res.stdout


def test_verify_fails_naming_the_endpoint_and_the_target_that_does_not_answer(fleet):
    silent = "198.18.254.254"  # on the underlay's subnet, and nobody's
    res, _recap, _changed, _summaries = fleet.play("verify.yml", "-e", f"overlay_verify_egress_target={silent}")
    assert res.returncode != 0
    assert f"Egress FAILED: 0 of 4 endpoint(s) of front reach {silent}" in res.stdout
    for label in ("h1/web1", "h1/app1", "h2/web2", "h3/web3"):
        assert f"✗ {label} -> {silent}: no reply" in res.stdout
    assert "4 failed egress check(s) and 0 failed name check(s)" in res.stdout


def test_a_second_run_changes_nothing(fleet):
    res, recap, changed, summaries = fleet.play("site.yml")
    assert res.returncode == 0, res.stdout[-6000:]
    assert set(recap) == set(HOSTS)
    assert changed == [] and all(count == 0 for count in recap.values()), (recap, summaries)


def test_teardown_leaves_nothing_of_the_feature_and_the_users_netns_as_it_was(fleet):
    during = fleet.files()
    assert all(any(line.startswith("dnsmasq ") for line in lines) for lines in during.values()), during
    res, recap, _changed, _summaries = fleet.play("teardown.yml")
    assert res.returncode == 0, res.stdout[-6000:]
    assert set(recap) == set(HOSTS)
    after = snapshot(fleet.lab, HOSTS)
    assert after == fleet.pristine, "teardown left kernel state behind:\n" + snapshot_diff(fleet.pristine, after)
    user = fleet.sh("h1", f"ip -n {USER_NETNS} -br addr show dev lo; ip -n {USER_NETNS} -br link show")
    assert USER_LO in user and "keep0" in user and "ovl0" not in user, user
    left = {}
    for host, lines in fleet.files().items():
        new = lines - fleet.pristine_files[host]
        found = {line.removeprefix("file ") for line in new if line.startswith("file ")} - BASE_STATE - EMPTY_DIRS
        found |= {line for line in new if not line.startswith("file ")}  # a forwarding switch, a dnsmasq
        if found:
            left[host] = sorted(found)
    assert not left, f"teardown left behind: {left}"
