# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The recipes of docs/guide.md, "Running a workload on an endpoint", read from the guide itself and run.

Every command and unit below is parsed out of the section's fenced blocks, so the guide and this test cannot drift.
The guide's endpoint ``web1`` and its peer ``web2`` (10.214.0.3) are the demo fleet's (web1 on h1, web2 on h2):

- ``ip netns exec``: the guide's line, run in h1, reaches web2;
- the systemd units pass ``systemd-analyze verify`` (systemd is installed here but is not PID 1, so nothing is
  started by systemd); the workload unit's ``ExecStart=`` is run the way the unit runs it, in the netns of
  ``NetworkNamespacePath=`` (``nsenter --net=...``, working directory ``/``), and web2 reaches it;
- podman: the guide's ``--rootfs`` line, run in h1 (whose private ``/run`` holds the endpoint's netns) with its
  storage, configuration, locks and runtime state kept in the test's directory, reaches web2 and leaves no
  container;
- the attach route: the netns that the guide's ``netns@.service`` makes (its ``ExecStart=``), attached with the
  guide's ``netns:`` endpoint, carries the guide's app unit and a podman container that reach web2.

Two things of the lab, not of the recipes, are adapted for podman, and said where: the lab host has no cgroup
file system (its ``/sys`` is a fresh sysfs), so the test mounts a tmpfs on its ``/sys/fs/cgroup`` for the run and
tells crun not to manage cgroups; and the root file system is a directory whose ``/usr`` is the machine's.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from lab_helpers import REPO, needs_root
from reliability_helpers import lab_fleet
from support.demo_fleet import DEMO, LAB_VARS

GUIDE = REPO / "docs" / "guide.md"
SECTION = "Running a workload on an endpoint"
ENDPOINT, PEER = "web1", DEMO[("h2", "web2")][1]
WEB1_IP = DEMO[("h1", ENDPOINT)][1]


# -- the section, from the guide -----------------------------------------------------------------------------------


def section() -> str:
    text = GUIDE.read_text(encoding="utf-8")
    match = re.search(rf"^## \d+\. {SECTION}\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert match, f"docs/guide.md has no section {SECTION!r}"
    return match.group(1)


def blocks(lang: str) -> list[str]:
    """The section's fenced blocks of ``lang``."""
    return re.findall(rf"^```{lang}\n(.*?)^```$", section(), re.MULTILINE | re.DOTALL)


def command(prefix: str, *having: str) -> str:
    """The one line of the section's ``sh`` blocks that starts with ``prefix`` and holds each of ``having``."""
    lines = [
        line
        for block in blocks("sh")
        for line in block.splitlines()
        if line.startswith(prefix) and all(word in line for word in having)
    ]
    assert len(lines) == 1, f"expected one command {prefix!r}... with {having} in the guide, got {lines}"
    return lines[0]


def units() -> dict[str, str]:
    """``{unit file name: text}`` of the section's ``ini`` blocks (each starts with ``# /etc/systemd/system/NAME``)."""
    found = {}
    for block in blocks("ini"):
        first = block.splitlines()[0]
        assert first.startswith("# /etc/systemd/system/"), first
        found[first.rsplit("/", 1)[1]] = block
    return found


def unit_value(text: str, key: str) -> str:
    """The one value of ``key=`` in a unit (the recipes set each key once)."""
    values = re.findall(rf"^{key}=(.*)$", text, re.MULTILINE)
    assert len(values) == 1, f"{key}= appears {len(values)} times"
    return values[0]


def test_the_section_has_the_recipes_on_the_demo_fleets_endpoints():
    assert DEMO[("h1", ENDPOINT)][0] == DEMO[("h2", "web2")][0] == "backend"
    assert PEER == "10.214.0.3" and PEER in section()
    assert command("ip netns exec").startswith(f"ip netns exec {ENDPOINT} ")
    assert f"--network ns:/run/netns/{ENDPOINT}" in command("podman run", "--rootfs")
    assert sorted(units()) == ["app1.service", "netns@.service", "web1-app.service"]
    assert unit_value(units()["web1-app.service"], "NetworkNamespacePath") == f"/run/netns/{ENDPOINT}"


# -- systemd: the unit files -----------------------------------------------------------------------------------------


def verify(directory: Path, *names: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["systemd-analyze", "verify", *names], cwd=directory, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_units_pass_systemd_analyze_verify(tmp_path):
    for name, text in units().items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    # the template is verified as the instance that app1.service requires (its dependencies load from here)
    names = [name for name in units() if "@." not in name] + ["netns@app1.service"]
    res = verify(tmp_path, *names)
    assert res.returncode == 0 and res.stdout == res.stderr == "", res.stdout + res.stderr
    # verify is not a no-op here: a unit that requires a unit nobody has fails
    broken = units()["app1.service"].replace("netns@app1.service", "nosuch@app1.service")
    (tmp_path / "broken.service").write_text(broken, encoding="utf-8")
    res = verify(tmp_path, "broken.service")
    assert res.returncode != 0 and "nosuch@app1.service" in res.stderr, res.stderr


# -- on the demo fleet -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    if shutil.which("ip") is None:
        pytest.skip("iproute2 is not installed")
    yield from lab_fleet(tmp_path_factory, "recipes")


def sh(fleet, host: str, script: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return fleet.lab.exec(host, "sh", "-c", script, timeout=timeout)


def fetch(fleet, host: str, netns: str, url: str) -> subprocess.CompletedProcess:
    """GET ``url`` from a netns of ``host`` (retried for a few seconds while the server starts)."""
    code = f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=3).status)"
    for _attempt in range(20):
        res = fleet.lab.exec(host, "ip", "netns", "exec", netns, "python3", "-c", code)
        if res.returncode == 0:
            break
        time.sleep(0.5)
    return res


def run_exec_start(fleet, unit: str, host: str, log: str) -> int:
    """Start ``unit``'s ``ExecStart=`` as the unit would: in the netns of ``NetworkNamespacePath=``, from ``/``, with
    no stdin; returns its PID in ``host``."""
    netns_path = unit_value(unit, "NetworkNamespacePath")
    argv = shlex.split(unit_value(unit, "ExecStart"))
    script = f"cd / && nsenter --net={shlex.quote(netns_path)} {shlex.join(argv)} </dev/null >{log} 2>&1 & echo $!"
    res = sh(fleet, host, script)
    assert res.returncode == 0, res.stderr
    return int(res.stdout.strip())


def server_port(unit: str) -> int:
    match = re.search(r"http\.server (\d+)", unit_value(unit, "ExecStart"))
    assert match, unit_value(unit, "ExecStart")
    return int(match.group(1))


@pytest.mark.lab
@needs_root
def test_ip_netns_exec_reaches_a_peer(fleet):
    res = sh(fleet, "h1", command("ip netns exec"))
    assert res.returncode == 0 and re.search(r"(\d+) packets transmitted, \1 received", res.stdout), res.stdout


@pytest.mark.lab
@needs_root
def test_the_units_exec_start_in_its_netns_is_reached_by_a_peer(fleet, tmp_path):
    unit = units()["web1-app.service"]
    log = tmp_path / "web1-app.log"
    pid = run_exec_start(fleet, unit, "h1", str(log))
    try:
        res = fetch(fleet, "h2", "web2", f"http://{WEB1_IP}:{server_port(unit)}/")
        assert res.returncode == 0 and res.stdout.strip() == "200", res.stdout + res.stderr
        assert f"{PEER} - - " in log.read_text(encoding="utf-8")  # the server answered web2 itself
    finally:
        sh(fleet, "h1", f"kill {pid}")


# -- podman ----------------------------------------------------------------------------------------------------------


class Podman:
    """podman inside a lab host, with everything it keeps in ``root`` (a directory of the test): storage, runtime
    state, locks (file locks, not /dev/shm), events and configuration; never the machine's."""

    def __init__(self, fleet, host: str, root: Path):
        self.fleet, self.host, self.root = fleet, host, root
        for sub in ("storage", "runroot", "tmp", "crun", "xdg/config", "xdg/data", "xdg/run"):
            (root / sub).mkdir(parents=True)
        (root / "xdg/run").chmod(0o700)
        (root / "containers.conf").write_text(
            '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nlock_type = "file"\n', encoding="utf-8"
        )
        (root / "storage.conf").write_text(
            f'[storage]\ndriver = "vfs"\ngraphroot = "{root}/storage"\nrunroot = "{root}/runroot"\n', encoding="utf-8"
        )
        (root / "registries.conf").write_text("unqualified-search-registries = []\n", encoding="utf-8")
        self.rootfs = root / "rootfs"  # /usr is the machine's (merged /usr: bin, sbin, lib link into it)
        self.rootfs.mkdir()
        for name in ("bin", "sbin", "lib", "lib64"):
            (self.rootfs / name).symlink_to(f"usr/{name}")
        for name in ("usr", "etc", "proc", "sys", "dev", "tmp", "run"):
            (self.rootfs / name).mkdir()
        self.env = [
            f"CONTAINERS_CONF={root}/containers.conf",
            f"CONTAINERS_STORAGE_CONF={root}/storage.conf",
            f"CONTAINERS_REGISTRIES_CONF={root}/registries.conf",
            f"XDG_CONFIG_HOME={root}/xdg/config",
            f"XDG_DATA_HOME={root}/xdg/data",
            f"XDG_RUNTIME_DIR={root}/xdg/run",
        ]
        self.options = [
            f"--root={root}/storage",
            f"--runroot={root}/runroot",
            f"--tmpdir={root}/tmp",
            "--storage-driver=vfs",
            f"--runtime-flag=root={root}/crun",
            # the lab host has no cgroup file system: crun must not manage cgroups
            "--runtime-flag=cgroup-manager=disabled",
        ]

    def __call__(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        return self.fleet.lab.exec(self.host, "env", *self.env, "podman", *self.options, *args, timeout=timeout)

    def run_recipe(self, line: str, rootfs_placeholder: str = "/srv/rootfs") -> subprocess.CompletedProcess:
        """The guide's ``podman run ... --rootfs PATH CMD`` line with this root file system, ``/usr`` mounted
        read-only from the machine, and no cgroups (the lab's, see the module docstring)."""
        words = shlex.split(line)
        assert words[:2] == ["podman", "run"] and rootfs_placeholder in words, words
        words = [str(self.rootfs) if w == rootfs_placeholder else w for w in words]
        return self("run", "--volume=/usr:/usr:ro", "--cgroups=disabled", *words[2:])

    def containers(self) -> list[str]:
        res = self("ps", "--all", "--quiet")
        assert res.returncode == 0, res.stderr
        return res.stdout.split()


@pytest.fixture
def podman(fleet):
    """podman in h1, with a tmpfs on h1's /sys/fs/cgroup for crun (h1's own mount, removed afterwards); every
    container it made is removed."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    shm_lock = Path("/dev/shm/libpod_lock")
    had_shm_lock = shm_lock.exists()
    res = sh(fleet, "h1", "mount -t tmpfs -o size=1m,mode=0755 nfl-cgroup /sys/fs/cgroup")
    assert res.returncode == 0, res.stderr
    # podman refuses a runroot longer than 50 characters: pytest's directories are too deep
    tool = Podman(fleet, "h1", Path(tempfile.mkdtemp(prefix="nfl-podman-", dir="/tmp")))
    try:
        yield tool
        assert tool.containers() == []
    finally:
        left = tool.containers()
        if left:
            tool("rm", "--force", *left)
        sh(fleet, "h1", "umount /sys/fs/cgroup")
        shutil.rmtree(tool.root, ignore_errors=True)
    assert had_shm_lock or not shm_lock.exists(), "podman made /dev/shm/libpod_lock on the machine"


@pytest.mark.lab
@needs_root
def test_a_podman_container_in_the_endpoint_reaches_a_peer(podman):
    res = podman.run_recipe(command("podman run", "--rootfs"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert re.search(r"(\d+) packets transmitted, \1 received", res.stdout), res.stdout


# -- the attach route --------------------------------------------------------------------------------------------


@pytest.mark.lab
@needs_root
def test_the_attach_route_a_netns_of_the_unit_joins_the_overlay(fleet, podman, tmp_path):
    """``netns@app1`` makes the netns (its ``ExecStart=`` with ``%i`` = app1), the guide's endpoint attaches it, and
    both the app unit's process and a podman container in that netns reach web2 (and web2 reaches the app)."""
    found = units()
    app = found["app1.service"]
    instance = re.fullmatch(r"netns@(.+)\.service", unit_value(app, "Requires"))
    assert instance, unit_value(app, "Requires")
    netns = instance.group(1)
    make = unit_value(found["netns@.service"], "ExecStart").replace("%i", netns)
    res = sh(fleet, "h1", make)
    assert res.returncode == 0, res.stderr
    attach = yaml.safe_load(blocks("yaml")[-1])["overlay_endpoints"]
    assert [ep.get("netns") for ep in attach] == [netns]
    demo = yaml.safe_load((LAB_VARS / "host_vars" / "h1.yml").read_text(encoding="utf-8"))["overlay_endpoints"]
    overrides = {"h1": yaml.safe_dump({"overlay_endpoints": demo + attach})}
    res, _recap, _changed = fleet.play("site.yml", overrides=overrides)
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]
    address = sh(fleet, "h1", f"ip -n {netns} -o -4 addr show dev {attach[0]['interface']}").stdout.split()[3]
    # a podman container in the attached netns
    line = command("podman run", "--rootfs").replace(f"ns:/run/netns/{ENDPOINT}", f"ns:/run/netns/{netns}")
    res = podman.run_recipe(line)
    assert res.returncode == 0 and re.search(r"(\d+) packets transmitted, \1 received", res.stdout), res.stdout
    # the app unit's process
    log = tmp_path / "app1.log"
    pid = run_exec_start(fleet, app, "h1", str(log))
    try:
        res = fetch(fleet, "h2", "web2", f"http://{address.split('/')[0]}:{server_port(app)}/")
        assert res.returncode == 0 and res.stdout.strip() == "200", res.stdout + res.stderr
    finally:
        sh(fleet, "h1", f"kill {pid}")
