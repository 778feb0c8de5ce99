# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel integration tests: run the modules through Ansible inside throw-away network namespaces.

* :class:`Lab` (fixture ``lab``) names and creates namespaces with a per-test prefix and deletes every namespace
  with that prefix afterwards (also the ones a module created), even when the test fails.
* :func:`run_tasks` runs several module calls as one ``ansible-playbook`` run inside a host namespace
  (``nsenter --net``); :func:`run_module` runs one.  Results come back as dicts.  With ``private_run`` the run
  also gets a mount namespace of its own with an empty tmpfs on ``/run`` (as a lab host has), so what a module
  writes there, such as the host lock ``/run/netfleet-overlay/host.lock``, stays out of the machine's ``/run``.
* :class:`Kernel` reads state independently of the collection, with ``ip -j`` and ``bridge -j``.  A
  :class:`Snap` task takes the same snapshot in the middle of a playbook, so the four steps of an idempotence
  check cost a single Ansible start.

Nothing here touches the machine's own namespace: every ``ip`` call names a namespace created by the test.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from devenv import VENV_BIN, ansible_env

NETNS_DIR = Path("/run/netns")
SESSION_PREFIX = "nft" + secrets.token_hex(2)
IP = shutil.which("ip") or "/usr/sbin/ip"
BRIDGE = shutil.which("bridge") or "/usr/sbin/bridge"
# run inside `unshare --mount` (whose mounts are private: nothing propagates to the machine) before the playbook
# starts: a fresh /run, gone with the mount namespace when the playbook exits, however it exits
PRIVATE_RUN = (
    "mount -t tmpfs -o mode=0755,size=16m,nosuid,nodev netfleet-test-run /run"
    ' && mkdir -m 0755 /run/netns && mkdir -m 1777 /run/lock && exec "$@"'
)


# --- ip / bridge, run in a named namespace --------------------------------------------------------------------


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command (argv list, no shell); raise with its stderr when it fails and ``check``."""
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and proc.returncode:
        raise AssertionError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def ip(ns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    assert ns, "every ip call names a test namespace"
    return sh(IP, "-n", ns, *args, check=check)


def nsexec(ns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    assert ns
    return sh(IP, "netns", "exec", ns, *args, check=check)


def netns_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def netns_names(prefix: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def delete_netns(names) -> None:
    for name in names:
        if netns_exists(name):
            sh(IP, "netns", "del", name, check=False)


# --- independent kernel reads ---------------------------------------------------------------------------------

_SECTIONS = ("link", "addr", "neigh", "fdb", "udp")


def _snapshot_script(namespaces) -> str:
    """One shell script printing, per namespace, its links, addresses, neighbours and FDB as ``ip -j`` JSON."""
    parts = []
    for ns in namespaces:
        assert "'" not in ns
        parts.append(
            f"echo '@@ns {ns}'; if [ -e /run/netns/{ns} ]; then "
            f"echo '@@link'; {IP} -j -n '{ns}' -d link show; "
            f"echo '@@addr'; {IP} -j -n '{ns}' addr show; "
            f"echo '@@neigh'; {IP} -j -n '{ns}' neigh show; "
            f"echo '@@fdb'; {BRIDGE} -j -n '{ns}' fdb show; "
            f"echo '@@udp'; {IP} netns exec '{ns}' ss -H -uln; fi"
        )
    return "; ".join(parts)


_DYNAMIC_NUD = {"REACHABLE", "STALE", "DELAY", "PROBE"}


def _is_multicast_mac(mac: str) -> bool:
    return bool(int(mac[:2], 16) & 1)


def _norm_link(raw: dict) -> dict:
    info = raw.get("linkinfo") or {}
    out = {
        "ifindex": raw.get("ifindex"),
        "kind": info.get("info_kind"),
        "mtu": raw.get("mtu"),
        "mac": raw.get("address"),
        "master": raw.get("master"),
        "up": "UP" in (raw.get("flags") or []),
        "link": raw.get("link"),
        "link_index": raw.get("link_index"),
        "link_netnsid": raw.get("link_netnsid"),
    }
    if out["kind"] == "vxlan":
        out["vxlan"] = dict(info.get("info_data") or {})
    return out


def _parse_ns(sections: dict) -> dict:
    links = {r["ifname"]: _norm_link(r) for r in sections.get("link") or []}
    addrs = set()
    for r in sections.get("addr") or []:
        for a in r.get("addr_info") or []:
            if a.get("scope") == "link":
                continue  # kernel-made fe80::/64, appears asynchronously
            addrs.add((r["ifname"], f"{a['local']}/{a['prefixlen']}"))
    neigh = set()
    for r in sections.get("neigh") or []:
        dst = r.get("dst", "")
        if dst.startswith(("ff", "fe80")):
            continue
        state = r.get("state") or []
        state = ",".join(state) if isinstance(state, list) else state
        if state in _DYNAMIC_NUD:
            state = "DYNAMIC"  # reachable ages to stale on its own: both are "learned"
        neigh.add((r.get("dev"), dst, r.get("lladdr"), state))
    fdb = set()
    for r in sections.get("fdb") or []:
        mac = r.get("mac", "")
        if mac and _is_multicast_mac(mac):
            continue  # multicast list entries follow IPv6 autoconfiguration, asynchronously
        if not r.get("dst") and not r.get("state"):
            continue  # learned by the bridge from traffic
        fdb.add(
            (
                r.get("ifname"),
                mac,
                r.get("dst"),
                r.get("master"),
                ",".join(sorted(r.get("flags") or [])),
                r.get("state") or "",
            )
        )
    # listening UDP sockets (a vxlan device's socket shows up in the namespace it was created in)
    udp = {line.split()[3] for line in sections.get("udp") or [] if len(line.split()) > 3}
    return {"links": links, "addrs": addrs, "neigh": neigh, "fdb": fdb, "udp": udp}


def parse_snapshot(text: str) -> dict:
    """Parse :func:`_snapshot_script` output into ``{ns: state or None}`` (None: the namespace is absent)."""
    out: dict = {}
    ns = section = None
    chunks: dict = {}

    def flush():
        if ns is not None:
            parsed = {k: v if k == "udp" else json.loads("".join(v) or "[]") for k, v in chunks.items()}
            out[ns] = _parse_ns(parsed) if chunks else None

    for line in text.splitlines(keepends=True):
        if line.startswith("@@ns "):
            flush()
            ns, section, chunks = line[5:].strip(), None, {}
        elif line.strip() in {f"@@{s}" for s in _SECTIONS}:
            section = line.strip()[2:]
            chunks[section] = []
        elif section:
            chunks[section].append(line)
    flush()
    return out


class Kernel:
    """Reads kernel state with iproute2, independently of the collection."""

    @staticmethod
    def snapshot(*namespaces: str) -> dict:
        proc = sh("sh", "-c", _snapshot_script(namespaces))
        return parse_snapshot(proc.stdout)

    @staticmethod
    def links(ns: str) -> dict:
        return {r["ifname"]: r for r in json.loads(ip(ns, "-j", "-d", "link", "show").stdout or "[]")}

    @staticmethod
    def link(ns: str, ifname: str) -> dict | None:
        proc = ip(ns, "-j", "-d", "link", "show", "dev", ifname, check=False)
        if proc.returncode:
            return None
        (row,) = json.loads(proc.stdout)
        return row

    @staticmethod
    def addrs(ns: str, ifname: str) -> list[str]:
        rows = json.loads(ip(ns, "-j", "addr", "show", "dev", ifname).stdout or "[]")
        return sorted(
            f"{a['local']}/{a['prefixlen']}" for r in rows for a in r.get("addr_info", []) if a.get("scope") != "link"
        )

    @staticmethod
    def neigh(ns: str, dev: str) -> list[dict]:
        return json.loads(ip(ns, "-j", "neigh", "show", "dev", dev).stdout or "[]")

    @staticmethod
    def permanent_neigh(ns: str, dev: str) -> list[dict]:
        return sorted(
            ({"ip": r["dst"], "mac": r["lladdr"]} for r in Kernel.neigh(ns, dev) if "PERMANENT" in r.get("state", [])),
            key=lambda e: (e["ip"], e["mac"]),
        )

    @staticmethod
    def fdb(ns: str, dev: str) -> list[dict]:
        return json.loads(sh(BRIDGE, "-j", "-n", ns, "fdb", "show", "dev", dev).stdout or "[]")

    @staticmethod
    def self_fdb(ns: str, dev: str) -> list[dict]:
        """The device-side (self) entries with a remote destination: what the fdb module manages."""
        return [r for r in Kernel.fdb(ns, dev) if "self" in r.get("flags", []) and r.get("dst")]

    @staticmethod
    def permanent_fdb(ns: str, dev: str) -> list[dict]:
        return sorted(
            ({"mac": r["mac"], "dst": r["dst"]} for r in Kernel.self_fdb(ns, dev) if r.get("state") == "permanent"),
            key=lambda e: (e["mac"], e["dst"]),
        )


@pytest.fixture
def kernel():
    return Kernel


# --- running modules through Ansible --------------------------------------------------------------------------


@dataclass
class Call:
    """One module task.  ``module`` is the short name (``bridge``) or a full FQCN."""

    module: str
    args: dict = field(default_factory=dict)
    check: bool = False
    diff: bool = False


@dataclass
class Snap:
    """A kernel snapshot of ``namespaces`` (iproute2 and ss) taken at this point of the playbook."""

    namespaces: tuple


@dataclass
class Cmd:
    """A shell command at this point of the playbook (``ip netns exec ... ping``); returns rc, stdout, stderr."""

    command: str


def _fqcn(module: str) -> str:
    return module if "." in module else f"netfleet.overlay.{module}"


def run_tasks(
    hostns: str, tasks: list, *, interpreter: str | None = None, tmp: Path | None = None, private_run: bool = False
) -> list:
    """Run ``tasks`` (:class:`Call` / :class:`Snap` / :class:`Cmd`) in one ansible-playbook inside netns ``hostns``.

    Returns one item per task: the module result dict for a Call, the parsed snapshot for a Snap.
    Module failures do not stop the run; they come back with ``failed: true``.

    ``private_run``: the playbook sees an empty ``/run`` of its own (with empty ``netns`` and ``lock``
    directories), so no namespace of the machine is visible to it by name, and nothing it writes under ``/run``
    reaches the machine.  Snapshots (:class:`Snap`) read ``/run/netns``, so they do not work there.
    """
    assert netns_exists(hostns), f"host namespace {hostns} missing"
    assert not (private_run and any(isinstance(t, Snap) for t in tasks)), "a Snap needs the machine's /run/netns"
    with tempfile.TemporaryDirectory(prefix=f"{SESSION_PREFIX}-pb-", dir=tmp) as work:
        # the results file must be outside /run: a private /run hides it from this process
        assert not private_run or not Path(work).resolve().is_relative_to("/run"), work
        out = Path(work) / "results.json"
        pb_tasks = []
        names = []
        for i, t in enumerate(tasks):
            reg = f"r{i}"
            names.append(reg)
            if isinstance(t, Snap):
                pb_tasks.append(
                    {
                        "name": f"snapshot {i}",
                        # raw: no module wrapper, so a snapshot costs a shell, not a Python start
                        "ansible.builtin.raw": _snapshot_script(t.namespaces),
                        "register": reg,
                        "check_mode": False,
                        "diff": False,
                        "changed_when": False,
                    }
                )
            elif isinstance(t, Cmd):
                pb_tasks.append(
                    {
                        "name": f"command {i}",
                        "ansible.builtin.raw": t.command,
                        "register": reg,
                        "ignore_errors": True,
                        "check_mode": False,
                        "diff": False,
                        "changed_when": False,
                    }
                )
            else:
                pb_tasks.append(
                    {
                        "name": f"{t.module} {i}",
                        _fqcn(t.module): t.args,
                        "register": reg,
                        "ignore_errors": True,
                        "check_mode": t.check,
                        "diff": t.diff,
                    }
                )
        collect = "{{ [" + ", ".join(names) + "] | to_json }}"
        pb_tasks.append(
            {
                "name": "collect",
                "ansible.builtin.copy": {"content": collect, "dest": str(out), "mode": "0600"},
                "check_mode": False,
                "diff": False,
            }
        )
        play = [{"hosts": "localhost", "gather_facts": False, "tasks": pb_tasks}]
        pb = Path(work) / "play.yml"
        pb.write_text(json.dumps(play, indent=1))
        argv = ["nsenter", f"--net={NETNS_DIR / hostns}"]
        if private_run:
            argv += ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", PRIVATE_RUN, "private-run"]
        argv += [str(VENV_BIN / "ansible-playbook"), str(pb)]
        if interpreter:
            argv += ["-e", json.dumps({"ansible_python_interpreter": interpreter})]
        proc = subprocess.run(argv, capture_output=True, text=True, env=ansible_env(), cwd=work, check=False)
        if not out.exists():
            raise AssertionError(
                f"ansible-playbook gave no results (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        raw = json.loads(out.read_text())
    results = []
    for t, r in zip(tasks, raw, strict=True):
        if isinstance(t, Snap):
            assert r.get("rc") == 0, r
            results.append(parse_snapshot(r["stdout"]))
        elif isinstance(t, Cmd):
            results.append({"rc": r.get("rc"), "stdout": r.get("stdout", ""), "stderr": r.get("stderr", "")})
        else:
            results.append(r)
    return results


def run_module(hostns: str, module: str, args: dict, check: bool = False, diff: bool = False, **kw) -> dict:
    """Run one module through Ansible in netns ``hostns`` and return its result dict."""
    (result,) = run_tasks(hostns, [Call(module, args, check=check, diff=diff)], **kw)
    return result


def four_step_tasks(module: str, args: dict, namespaces) -> list:
    """community.crypto's idempotence steps for one module call, with kernel snapshots in between:
    check (with diff), apply, check (with diff), apply.  The caller snapshots once more at the end."""
    ns = tuple(namespaces)
    return [
        Snap(ns),
        Call(module, args, check=True, diff=True),
        Snap(ns),
        Call(module, args),
        Snap(ns),
        Call(module, args, check=True, diff=True),
        Call(module, args),
    ]


_STEP_KEYS = ("snap_before", "check", "snap_after_check", "apply", "snap_after_apply", "check2", "apply2")


def four_steps(
    hostns: str, scenarios, namespaces, *, setup: list | None = None, setup_results: list | None = None
) -> list[dict]:
    """Run several four-step scenarios ``[(module, args), ...]`` back to back in one playbook, after ``setup``.

    Returns one dict per scenario with the keys of ``_STEP_KEYS`` and ``snap_end`` (the kernel after the second
    apply, which is also the next scenario's ``snap_before``).  ``setup_results`` receives the setup's results.
    """
    tasks = list(setup or [])
    for module, args in scenarios:
        tasks += four_step_tasks(module, args, namespaces)
    tasks.append(Snap(tuple(namespaces)))
    res = run_tasks(hostns, tasks)
    if setup_results is not None:
        setup_results.extend(res[: len(setup or [])])
    res = res[len(setup or []) :]
    n = len(_STEP_KEYS)
    out = [dict(zip(_STEP_KEYS, res[i : i + n], strict=True)) for i in range(0, len(res) - 1, n)]
    for i, r in enumerate(out):
        r["snap_end"] = out[i + 1]["snap_before"] if i + 1 < len(out) else res[-1]
    return out


def snap_diff(a: dict, b: dict) -> str:
    """What differs between two snapshots, for assertion messages."""
    lines = []
    for ns in sorted(set(a) | set(b)):
        sa, sb = a.get(ns), b.get(ns)
        if sa == sb:
            continue
        if sa is None or sb is None:
            lines.append(f"{ns}: {'absent' if sa is None else 'present'} -> {'absent' if sb is None else 'present'}")
            continue
        for key in sa:
            if sa[key] == sb[key]:
                continue
            if isinstance(sa[key], set):
                lines.append(f"{ns} {key}: -{sorted(sa[key] - sb[key], key=str)} +{sorted(sb[key] - sa[key], key=str)}")
            else:
                for name in sorted(set(sa[key]) | set(sb[key])):
                    if sa[key].get(name) != sb[key].get(name):
                        lines.append(f"{ns} {key} {name}: {sa[key].get(name)} -> {sb[key].get(name)}")
    return "\n".join(lines)


def assert_ok(result: dict) -> dict:
    assert not result.get("failed"), result.get("msg", result)
    return result


def assert_four_steps(r: dict) -> None:
    """The generic part of the four steps: changed / unchanged and check mode's prediction."""
    for key in ("check", "apply", "check2", "apply2"):
        assert_ok(r[key])
    assert r["check"]["changed"] is True, r["check"]
    assert r["snap_after_check"] == r["snap_before"], "check mode changed the kernel:\n" + snap_diff(
        r["snap_before"], r["snap_after_check"]
    )
    assert r["check"]["after"] == r["apply"]["after"], "check mode's predicted after differs from the real one"
    assert "diff" in r["check"], "diff mode returned no diff"
    assert r["check"]["diff"]["before"] != r["check"]["diff"]["after"]
    assert r["apply"]["changed"] is True, r["apply"]
    assert r["snap_after_apply"] != r["snap_before"], "apply changed nothing in the kernel"
    assert r["check2"]["changed"] is False, r["check2"]
    assert r["check2"]["commands"] == []
    assert r["apply2"]["changed"] is False, r["apply2"]
    assert r["apply2"]["commands"] == []
    assert r["snap_end"] == r["snap_after_apply"], "an idempotent run changed the kernel:\n" + snap_diff(
        r["snap_after_apply"], r["snap_end"]
    )


# --- namespaces of one test -------------------------------------------------------------------------------------


class Lab:
    """Names and creates the namespaces of one test; :meth:`cleanup` deletes every namespace with its prefix."""

    _counter = 0

    def __init__(self):
        Lab._counter += 1
        self.prefix = f"{SESSION_PREFIX}{Lab._counter:02d}"

    def name(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    def netns(self, role: str) -> str:
        """Create namespace ``<prefix>-<role>`` (lo up, no IPv6 DAD) and return its name."""
        name = self.name(role)
        sh(IP, "netns", "add", name)
        ip(name, "link", "set", "lo", "up")
        for knob in ("all", "default"):
            nsexec(name, "sysctl", "-qw", f"net.ipv6.conf.{knob}.accept_dad=0", check=False)
        return name

    def underlay(
        self, ns_a: str, ns_b: str | None = None, *, addr_a: str, addr_b: str | None = None, index: int | None = None
    ) -> None:
        """A veth ``ul0`` in ``ns_a`` (peer ``ul0`` in ``ns_b``, or ``ul1`` in ``ns_a``), addressed and up.

        ``index`` pins ul0's ifindex, so that a device bound to it can be recognised from another namespace.
        """
        peer_ns = ns_b or ns_a
        peer = "ul0" if ns_b else "ul1"
        pin = ["index", str(index)] if index else []
        ip(ns_a, "link", "add", "ul0", *pin, "type", "veth", "peer", "name", peer, "netns", peer_ns)
        for ns, dev, addr in ((ns_a, "ul0", addr_a), (peer_ns, peer, addr_b)):
            if addr:
                ip(ns, "addr", "add", addr, "dev", dev, *(["nodad"] if ":" in addr else []))
            ip(ns, "link", "set", dev, "up")

    def cleanup(self) -> None:
        delete_netns(netns_names(self.prefix + "-"))


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="kernel tests need root (CAP_NET_ADMIN and /run/netns)")
    for item in items:
        if "kernel" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def lab(request):
    if os.geteuid() != 0:
        pytest.skip("kernel tests need root (CAP_NET_ADMIN and /run/netns)")
    the_lab = Lab()
    request.addfinalizer(the_lab.cleanup)
    return the_lab


@pytest.fixture(scope="session", autouse=True)
def _sweep_session_namespaces():
    """Last line of defence: nothing with this session's prefix survives the run."""
    yield
    delete_netns(netns_names(SESSION_PREFIX))


@pytest.fixture(scope="session", autouse=True)
def _no_state_dir_left_behind():
    """Every module that writes takes the host lock in the collection's state directory. The modules run here in
    the machine's mount namespace (their namespaces must be visible in /run/netns), so the lock file lands in the
    machine's /run: remove the directory again if this session made it. A private /run would hide /run/netns."""
    from ansible_collections.netfleet.overlay.plugins.module_utils._statedir import STATE_DIR

    existed = os.path.lexists(STATE_DIR)
    yield
    if not existed and os.path.isdir(STATE_DIR) and not os.path.islink(STATE_DIR):
        left = sorted(os.listdir(STATE_DIR))
        shutil.rmtree(STATE_DIR)
        assert left in ([], ["host.lock"]), f"the modules left more than the host lock in {STATE_DIR}: {left}"


@pytest.fixture
def nf():
    """The helpers above, for test modules (conftest modules are not importable by name)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        Call=Call,
        Snap=Snap,
        Cmd=Cmd,
        Kernel=Kernel,
        run_tasks=run_tasks,
        run_module=run_module,
        four_steps=four_steps,
        four_step_tasks=four_step_tasks,
        assert_ok=assert_ok,
        assert_four_steps=assert_four_steps,
        ip=ip,
        nsexec=nsexec,
        sh=sh,
        netns_exists=netns_exists,
        netns_names=netns_names,
        snap_diff=snap_diff,
    )
