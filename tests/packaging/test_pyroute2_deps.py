# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The role's pyroute2 prerequisite on a 1-host lab: a too old pyroute2 fails the preflight with a message that
says exactly what to install, and overlay_install_deps falls back to pip where the distribution's is too old.

A fake distribution ``pyroute2 0.7.2`` (only its metadata, as Debian 12's python3-pyroute2 reports itself) on
PYTHONPATH makes the host's Python report that version, while the modules still import the venv's real pyroute2.
The install path runs in check mode only: nothing is installed on this machine.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
from devenv import ansible_env
from packaging_helpers import REPO, run, tool

sys.path.insert(0, str(REPO / "tests" / "lab"))
from lab_helpers import build_lab, needs_root

pytestmark = [pytest.mark.packaging, pytest.mark.lab, needs_root]

PLAY = """---
- name: The role with a Python whose pyroute2 looks like Debian 12's
  hosts: lab
  gather_facts: false
  environment:
    PYTHONPATH: {fake}
  roles:
    - role: netfleet.overlay.overlay
"""
GROUP_VARS = """---
overlay_networks:
  - {name: overlay_network, vni: 256, subnet: 10.213.0.0/24}
overlay_endpoints:
  - {name: hosta, network: overlay_network}
"""
REQUIREMENT = "pyroute2>=0.9.1,<0.10"


def has_apt() -> bool:
    if not shutil.which("apt-get"):
        return False
    probe = subprocess.run(["/usr/bin/python3", "-c", "import apt"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.fixture(scope="module")
def setup(installed, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nfl-deps")
    fake = tmp / "fake-site"
    meta = fake / "pyroute2-0.7.2.dist-info"
    meta.mkdir(parents=True)
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: pyroute2\nVersion: 0.7.2\n", encoding="utf-8")
    # a second inventory source, like inventories/lab: the group lab and the topology as group_vars
    (tmp / "inv" / "group_vars").mkdir(parents=True)
    (tmp / "inv" / "lab.yml").write_text("all:\n  children:\n    lab:\n", encoding="utf-8")
    (tmp / "inv" / "group_vars" / "all.yml").write_text(GROUP_VARS, encoding="utf-8")
    (tmp / "play.yml").write_text(PLAY.format(fake=fake), encoding="utf-8")
    for lab in build_lab(tmp / "lab", 1):
        yield lab, tmp, ansible_env(tmp, isolated=True, collections=installed.collections)


def play(setup, *args: str):
    lab, tmp, env = setup
    cmd = [tool("ansible-playbook"), "-i", str(lab.inventory), "-i", str(tmp / "inv"), *args]
    return run([*cmd, str(tmp / "play.yml")], env, tmp, timeout=300)


def netns(lab) -> str:
    res = lab.exec("h1", "ip", "netns", "list")
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def test_too_old_pyroute2_fails_the_preflight_saying_what_to_install(setup):
    lab = setup[0]
    res = play(setup)
    assert res.returncode == 2, res.stdout[-4000:] + res.stderr
    out = " ".join(res.stdout.split())
    python = str(REPO / ".venv" / "bin" / "python")
    assert (
        f"h1: pyroute2 0.7.2 is installed for the Python that Ansible uses there ({python}), but the modules"
        f" need {REQUIREMENT}." in out
    ), res.stdout[-4000:]
    assert f"{python} -m pip install '{REQUIREMENT}'" in out
    assert "Debian 12's is 0.7.2, too old" in out and "overlay_install_deps: true" in out
    assert "Check the host's prerequisites" in res.stdout
    assert netns(lab) == ""  # failed before any change


@pytest.mark.skipif(not has_apt(), reason="the package step needs apt and python3-apt (Debian/Ubuntu)")
def test_install_deps_falls_back_to_pip_when_the_package_is_too_old(setup):
    """In check mode: the distribution package is tried, its pyroute2 is still too old, so pip would install."""
    lab = setup[0]
    res = play(setup, "--check", "-e", "overlay_install_deps=true")
    tasks = dict(re.findall(r"^TASK \[(?:netfleet\.overlay\.overlay : )?(.+?)\] \*+\n(\w+):", res.stdout, re.M))
    package = [state for name, state in tasks.items() if name.startswith("Install pyroute2 for the Python that runs")]
    assert package == ["changed"], res.stdout[-6000:]
    assert tasks.get("Read the pyroute2 version that the host has now") == "ok", res.stdout[-6000:]
    assert tasks.get("Install pip") in ("ok", "changed"), res.stdout[-6000:]
    assert tasks.get("Install pyroute2 with pip for the Python that runs the modules") == "changed", res.stdout[-6000:]
    # nothing was installed (check mode), so the preflight still sees 0.7.2 and says so
    assert res.returncode == 2 and "pyroute2 0.7.2 is installed" in " ".join(res.stdout.split())
    assert netns(lab) == ""


def test_supported_pyroute2_passes_and_converges(setup):
    """Without the fake, the venv's pyroute2 (0.9.x) passes the same checks and the host converges."""
    lab, tmp, env = setup
    plain = tmp / "plain.yml"
    plain.write_text(
        "---\n- name: Converge\n  hosts: lab\n  gather_facts: false\n  roles:\n    - role: netfleet.overlay.overlay\n",
        encoding="utf-8",
    )
    cmd = [tool("ansible-playbook"), "-i", str(lab.inventory), "-i", str(tmp / "inv"), str(plain)]
    res = run(cmd, env, tmp, timeout=300)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr
    assert "hosta" in netns(lab).split() and "ovl-256" in netns(lab).split()
