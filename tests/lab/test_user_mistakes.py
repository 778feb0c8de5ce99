# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mistakes of issue 11's table, made on a converged 3-host demo fleet: each is caught on the controller by a
guard of overlay_plan, before any host is changed, with a message that says what to do instead.

Every case takes a kernel snapshot of all three hosts before and after; where the run is refused, nothing may
change. Where a guard lets a run through on purpose (overlay_state: absent, overlay_allow_purge=true,
overlay_forget_hosts), the test checks what went and then converges the demo fleet back. Results go to
tests/output/reliability/user_mistakes.json (kind "user mistake", with the guard that catches it).
"""

from __future__ import annotations

import json
import shutil
import time

import pytest
import yaml
from devenv import ansible_env
from lab_helpers import build_lab, needs_root, run_ansible
from reliability_helpers import (
    PLAYBOOKS,
    RECAP_RE,
    Fleet,
    Results,
    check_teardown_leaves_no_residue,
    fatal_text,
    snapshot_diff,
)
from support.demo_fleet import LAB_VARS

pytestmark = [pytest.mark.lab, needs_root]

NETS = yaml.safe_load((LAB_VARS / "group_vars" / "all.yml").read_text(encoding="utf-8"))["overlay_networks"]
UNCHANGED = "kernel snapshot of h1, h2, h3 identical before and after"
REFUSED = [
    "fails (rc != 0) before any host is changed",
    "the message names the host, the field and the value",
    UNCHANGED,
]


def nets(*extra, **changes) -> str:
    """-e JSON: the demo's overlay_networks, with network ``name`` updated by ``changes[name]``, plus ``extra``."""
    networks = [{**net, **changes.get(net["name"], {})} for net in NETS]
    return json.dumps({"overlay_networks": networks + list(extra)})


class Mistakes:
    """The converged demo fleet, and site.yml runs with changed inventories."""

    def __init__(self, fleet: Fleet, tmp):
        self.fleet = fleet
        self.tmp = tmp
        self.results = Results("user_mistakes")
        self.runs = 0

    def site(self, *args, host_vars=None, overrides=None, hosts=None, check_diff=False):
        """site.yml with the lab's inventory (only ``hosts`` when given), the demo's variables (``host_vars``
        replaces files of its host_vars: name -> text, or None to delete) and host_vars ``overrides`` on top."""
        self.runs += 1
        work = self.tmp / f"run-{self.runs}"
        work.mkdir()
        inventory = self.fleet.lab.inventory
        if hosts is not None:
            data = yaml.safe_load(inventory.read_text(encoding="utf-8"))
            group = data["all"]["children"]["lab"]
            group["hosts"] = {name: group["hosts"][name] for name in hosts}
            inventory = work / "inventory.yml"
            inventory.write_text(yaml.safe_dump(data), encoding="utf-8")
        demo = LAB_VARS
        if host_vars:
            demo = work / "lab"
            shutil.copytree(LAB_VARS, demo)
            for name, text in host_vars.items():
                if text is None:
                    (demo / "host_vars" / name).unlink()
                else:
                    (demo / "host_vars" / name).write_text(text, encoding="utf-8")
        sources = ["-i", str(inventory), "-i", str(demo)]
        if overrides:
            (work / "extra" / "host_vars").mkdir(parents=True)
            for host, text in overrides.items():
                (work / "extra" / "host_vars" / f"{host}.yml").write_text(text, encoding="utf-8")
            sources += ["-i", str(work / "extra")]
        flags = ["--check", "--diff"] if check_diff else []
        res = run_ansible(self.fleet.env, *sources, str(PLAYBOOKS / "site.yml"), *flags, *args, tool="ansible-playbook")
        res.output = res.stdout + res.stderr
        res.recap = {m["host"]: int(m["changed"]) for m in RECAP_RE.finditer(res.stdout)}
        return res

    def refused(self, case, what, guard, words, *args, **kwargs):
        """Run the mistake; it must fail naming ``words``, change nothing, and print its message once."""
        started = time.monotonic()
        before = self.fleet.snapshot()
        res = self.site(*args, **kwargs)
        after = self.fleet.snapshot()
        message = fatal_text(res.stdout)
        problems = []
        if res.returncode == 0:
            problems.append("did not fail")
        missing = [word for word in words if word not in message]
        if missing:
            problems.append(f"message lacks {missing}")
        if any(res.recap.values()):
            problems.append(f"reported changed: {res.recap}")
        if after != before:
            problems.append("changed the kernel:\n" + snapshot_diff(before, after))
        self.record(case, what, guard, REFUSED, problems, started=started, message=_message(message))
        assert not problems, f"{case}: {'; '.join(problems)}\n{res.output[-5000:]}"
        return res

    def record(self, case, what, guard, checks, problems, *, started, **detail):
        self.results.add(
            "user mistake",
            case,
            checks,
            not problems,
            time.monotonic() - started,
            what=what,
            guard=guard,
            problems=problems,
            **detail,
        )

    def restore(self):
        """Converge the demo fleet again (recreated devices get new kernel-made MACs, so no snapshot compares)."""
        res = self.site()
        assert res.returncode == 0, res.output[-5000:]
        res = self.site()
        assert res.returncode == 0 and not any(res.recap.values()), res.output[-5000:]


def _message(text: str) -> str:
    """The first failure message, without Ansible's wrapping."""
    for line in text.splitlines():
        if '"msg": "' in line:
            return line.split('"msg": "', 1)[1].rsplit('"', 1)[0][:600]
    return text[:600]


@pytest.fixture(scope="module")
def mistakes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nfl-mistakes")
    for lab in build_lab(tmp / "lab", 3):
        fleet = Fleet(lab, ansible_env(tmp), tmp)
        fleet.pristine = fleet.snapshot()
        fleet.converge()
        state = Mistakes(fleet, tmp)
        fleet.results = state.results  # the teardown check records itself there
        yield state
    state.results.write()


def test_overlay_endpoint_singular_fails_naming_the_close_name(mistakes):
    singular = "overlay_endpoint:\n  - {name: hostb, network: overlay_network}\n  - {name: web2, network: backend}\n"
    mistakes.refused(
        "overlay-endpoint-singular",
        "overlay_endpoint: (singular) in one host's vars",
        "unknown overlay_* variables (overlay_plan)",
        ["host h2: unknown variable overlay_endpoint", "did you mean overlay_endpoints?", "No host was changed"],
        host_vars={"h2.yml": singular},
    )


def test_an_unknown_extra_variable_fails_too(mistakes):
    mistakes.refused(
        "overlay-firewal-extra-var",
        "-e overlay_firewal=false (a typo in an extra variable)",
        "unknown overlay_* variables (overlay_plan)",
        ["host h1: unknown variable overlay_firewal", "did you mean overlay_firewall?"],
        "-e",
        "overlay_firewal=false",
    )


def test_host_vars_under_a_wrong_name_is_refused_by_the_purge_guard(mistakes):
    mistakes.refused(
        "host-vars-wrong-name",
        "h2's host_vars file named h-2.yml",
        "purge guard (overlay_plan)",
        [
            *("whole overlay of host h2", "endpoints hostb, web2", "networks backend, overlay_network"),
            *("host_vars/h2.yml", "overlay_state: absent", "overlay_allow_purge=true"),
        ],
        host_vars={"h2.yml": None, "h-2.yml": (LAB_VARS / "host_vars" / "h2.yml").read_text(encoding="utf-8")},
    )


def test_an_emptied_endpoint_list_is_refused_also_in_check_mode(mistakes):
    for check in (False, True):
        mistakes.refused(
            f"endpoints-emptied{'-check' if check else ''}",
            f"one host's overlay_endpoints emptied by accident{' (--check --diff)' if check else ''}",
            "purge guard (overlay_plan)",
            ["fatal: [h1]", "whole overlay of host h3", "endpoints db, hostc, hostd"],
            overrides={"h3": "overlay_endpoints: []\n"},
            check_diff=check,
        )


def test_more_endpoints_than_the_purge_limit_are_refused(mistakes):
    mistakes.refused(
        "purge-limit",
        "a run that removes 2 endpoints with overlay_purge_limit 1",
        "purge guard (overlay_plan)",
        ["would remove 2 endpoints, more than overlay_purge_limit (1)", "h1: endpoints web1", "h2: endpoints web2"],
        "-e",
        "overlay_purge_limit=1",
        overrides={
            "h1": "overlay_endpoints: [{name: hosta, network: overlay_network}]\n",
            "h2": "overlay_endpoints: [{name: hostb, network: overlay_network}]\n",
        },
    )


def _gone(mistakes, host, before, after):
    """The netns names that ``host`` lost between two snapshots."""
    return sorted(set(before[host]) - set(after[host]))


def test_overlay_state_absent_and_allow_purge_let_the_purge_through(mistakes):
    started = time.monotonic()
    problems = []
    # --check --diff with the guard lifted lists what would go, by host and name, and changes nothing
    before = mistakes.fleet.snapshot()
    res = mistakes.site("-e", "overlay_allow_purge=true", overrides={"h2": "overlay_endpoints: []\n"}, check_diff=True)
    assert res.returncode == 0, res.output[-5000:]
    for line in ("overlay_plan: this run removes", "h2: endpoint hostb", "h2: endpoint web2", "h2: network backend"):
        if line not in res.stdout:
            problems.append(f"--check --diff lacks {line!r}")
    if mistakes.fleet.snapshot() != before:
        problems.append("--check changed the kernel")
    # overlay_state: absent on that host: its removals are exempt
    res = mistakes.site(overrides={"h2": "overlay_endpoints: []\noverlay_state: absent\n"})
    assert res.returncode == 0, res.output[-5000:]
    after = mistakes.fleet.snapshot()
    if _gone(mistakes, "h2", before, after) != ["hostb", "ovl-256", "ovl-300", "web2"]:
        problems.append(f"overlay_state: absent took {_gone(mistakes, 'h2', before, after)} from h2")
    mistakes.restore()
    # -e overlay_allow_purge=true
    res = mistakes.site("-e", "overlay_allow_purge=true", overrides={"h2": "overlay_endpoints: []\n"})
    assert res.returncode == 0, res.output[-5000:]
    after = mistakes.fleet.snapshot()
    if _gone(mistakes, "h2", before, after) != ["hostb", "ovl-256", "ovl-300", "web2"]:
        problems.append(f"overlay_allow_purge took {_gone(mistakes, 'h2', before, after)} from h2")
    mistakes.restore()
    mistakes.record(
        "purge-allowed",
        "overlay_state: absent, and -e overlay_allow_purge=true, on a host whose endpoints are emptied",
        "purge guard (overlay_plan): lifted on purpose",
        ["--check --diff lists the removed endpoints and networks by host and name", "the host is emptied"],
        problems,
        started=started,
    )
    assert not problems, problems


@pytest.mark.parametrize(
    "refusal",  # (case, what, guard, words, overlay_networks)
    [
        (
            "network-name-spaces",
            "a network named 'my front end'",
            "the naming rule of networks and endpoints (overlay_plan)",
            ["fatal: [h1]", "overlay_networks[2] name 'my front end' is not a valid network name", "'my_front_end'"],
            nets({"name": "my front end", "vni": 400, "subnet": "10.215.0.0/24"}),
        ),
        (
            "network-mtu-9000",
            "a network mtu 9000 on a 1500 underlay",
            "MTU that fits the underlay (overlay_plan)",
            ["host h1: network 'backend' mtu 9000 does not fit", "underlay_mtu 1500", "at most 1450"],
            nets(backend={"mtu": 9000}),
        ),
    ],
    ids=["name-with-spaces", "mtu-above-the-underlay"],
)
def test_a_network_the_controller_refuses(mistakes, refusal):
    *mistake, networks = refusal
    mistakes.refused(*mistake, "-e", networks)


def test_overlapping_subnets_are_refused(mistakes):
    mistakes.refused(
        "networks-overlap",
        "two networks with overlapping subnets (a /24 inside a /16) and the same address in both",
        "no overlapping subnets (overlay_plan)",
        ["fatal: [h1]", "'overlay_network' (subnet 10.213.0.0/24)", "'wide' (subnet 10.213.0.0/16) overlap"],
        "-e",
        nets({"name": "wide", "vni": 400, "subnet": "10.213.0.0/16"}),
        overrides={
            "h1": "overlay_endpoints: [{name: hosta, network: overlay_network},"
            " {name: web1, network: backend}, {name: twin, network: wide, address: 10.213.0.2}]\n"
        },
    )


def test_an_unknown_endpoint_key_gives_one_short_message(mistakes):
    res = mistakes.refused(
        "endpoint-key-netwrok",
        "netwrok: (a typo) in an endpoint",
        "unknown keys of networks and endpoints (overlay_plan)",
        ["host h3: endpoint 'hostc': unknown key 'netwrok'", "did you mean 'network'?"],
        overrides={
            "h3": "overlay_endpoints: [{name: hostc, netwrok: overlay_network}, {name: hostd,"
            " network: overlay_network}, {name: db, network: backend}]\n"
        },
    )
    assert "Validation of arguments failed" not in res.stdout, "the role's argument spec dumped itself"
    message = fatal_text(res.stdout)
    assert len(message) < 1000, message


def test_an_error_is_printed_once(mistakes):
    res = mistakes.refused(
        "error-printed-once",
        "any error of overlay_plan (here an unknown network)",
        "overlay_plan's failure message",
        ["host h1: endpoint 'hosta' network 'nosuch' is not defined"],
        overrides={"h1": "overlay_endpoints: [{name: hosta, network: nosuch}]\n"},
    )
    # ansible-core 2.19 shows every failed task twice, as an [ERROR] banner and as the result; each holds the
    # message once (a chained exception used to repeat it in both)
    fatal = [line for line in res.stdout.splitlines() if line.startswith("fatal: [h1]")]
    assert len(fatal) == 1 and fatal[0].count("network 'nosuch' is not defined") == 1, res.output[-4000:]
    banner = res.stdout.split("[ERROR]", 1)[-1].split("fatal: [h1]", 1)[0]
    assert banner.count("network 'nosuch' is not defined") <= 1, banner
    assert "caused by" not in res.output, res.output[-4000:]


def test_a_netns_the_collection_did_not_create_is_never_taken_over(mistakes):
    host = mistakes.fleet
    host.sh("h1", "ip netns add myapp && ip -n myapp link set lo up && ip -n myapp addr add 10.99.0.1/32 dev lo")
    try:
        mistakes.refused(
            "netns-takeover",
            "an endpoint named like a netns that the user made (ip netns add myapp)",
            "no takeover of a netns the collection did not create (overlay_plan, facts netns)",
            ["host h1: endpoint 'myapp' would take over netns 'myapp'", "Rename the endpoint", "ip netns del myapp"],
            overrides={
                "h1": "overlay_endpoints: [{name: hosta, network: overlay_network},"
                " {name: web1, network: backend}, {name: myapp, network: backend}]\n"
            },
        )
    finally:
        host.sh("h1", "ip netns del myapp")


def test_a_sliced_job_keeps_the_other_hosts_entries_with_a_warning(mistakes):
    started = time.monotonic()
    problems = []
    before = mistakes.fleet.snapshot()
    res = mistakes.site(hosts=["h1", "h2"])
    assert res.returncode == 0, res.output[-5000:]
    after = mistakes.fleet.snapshot()
    if after != before:
        problems.append("a slice changed the kernel:\n" + snapshot_diff(before, after))
    warning = "host h3 (VTEP 198.18.1.3) is not in the fleet group"
    if warning not in " ".join(res.output.split()):
        problems.append(f"no warning {warning!r}")
    # overlay_forget_hosts: h3 was decommissioned on purpose, so h1 and h2 drop what points at it
    res = mistakes.site("-e", json.dumps({"overlay_forget_hosts": ["h3"]}), hosts=["h1", "h2"])
    assert res.returncode == 0, res.output[-5000:]
    forgotten = mistakes.fleet.snapshot()
    for host in ("h1", "h2"):
        fdb = forgotten[host]["ovl-256"]["fdb"]
        if any(entry.get("dst") == "198.18.1.3" for entry in fdb):
            problems.append(f"{host} still has fdb entries to h3 after overlay_forget_hosts")
    if forgotten["h3"] != before["h3"]:
        problems.append("h3 was touched: " + snapshot_diff(before, forgotten))
    mistakes.restore()
    mistakes.record(
        "sliced-job",
        "an AWX sliced job (an inventory with only h1 and h2)",
        "vanished hosts are kept (overlay_plan, facts peers)",
        ["the slice changes nothing, and warns naming h3", "overlay_forget_hosts: [h3] drops h3's entries only"],
        problems,
        started=started,
    )
    assert not problems, "\n".join(problems)


def test_teardown_leaves_no_residue(mistakes):
    check_teardown_leaves_no_residue(mistakes.fleet, "teardown-after-user-mistakes")
