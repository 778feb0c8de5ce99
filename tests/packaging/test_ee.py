# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Execution environments: ansible-builder finds the collection's requirements in the installed copy, and the
example EE definition turns into a build context.

Building the image itself needs a container engine (podman or docker), which this machine has not; everything up
to the engine is checked here.
"""

from __future__ import annotations

import shutil

import pytest
import yaml
from ansible_builder.ee_schema import validate_schema
from devenv import ansible_env
from packaging_helpers import REPO, run, tool

pytestmark = pytest.mark.packaging

GALAXY = yaml.safe_load((REPO / "galaxy.yml").read_text(encoding="utf-8"))


def introspect(collections, tmp):
    res = run(
        [tool("ansible-builder"), "introspect", "--sanitize", str(collections)], ansible_env(tmp, isolated=True), tmp
    )
    assert res.returncode == 0, res.stdout + res.stderr
    return yaml.safe_load(res.stdout[res.stdout.index("---") :])


def test_introspect_finds_the_requirements_in_the_installed_collection(installed):
    deps = introspect(installed.collections, installed.tmp)
    python = [line.split("#")[0].strip() for line in deps["python"]]
    system = [line.split("#")[0].strip() for line in deps["system"]]
    assert "pyroute2>=0.9.1,<0.10" in python, deps
    assert "iproute2 [platform:dpkg]" in system and "iproute [platform:rpm]" in system, deps
    assert all(line.endswith("# from collection netfleet.overlay") for line in deps["python"] + deps["system"])


def test_ee_requirements_match_the_runtime_pin():
    """meta/ee-requirements.txt asks for the same pyroute2 range that requirements/runtime.txt documents."""
    ee = [line.strip() for line in (REPO / "meta" / "ee-requirements.txt").read_text().splitlines()]
    runtime = (REPO / "requirements" / "runtime.txt").read_text()
    assert "pyroute2>=0.9.1,<0.10" in ee
    assert "supported range: >=0.9.1,<0.10" in runtime
    vars_main = (REPO / "roles" / "overlay" / "vars" / "main.yml").read_text()
    assert '_overlay_pyroute2_min: "0.9.1"' in vars_main and '_overlay_pyroute2_below: "0.10"' in vars_main


@pytest.mark.parametrize("path", ["meta/execution-environment.yml", "examples/execution-environment.yml"])
def test_ee_files_follow_the_v3_schema(path):
    definition = yaml.safe_load((REPO / path).read_text(encoding="utf-8"))
    assert definition["version"] == 3
    validate_schema(definition)  # raises on any unknown key or wrong type


def test_example_ee_makes_a_build_context(tarball, tmp_path):
    """``ansible-builder create`` (all of a build but the container engine) on the example and this tarball."""
    work = tmp_path / "ee"
    work.mkdir()
    shutil.copy2(REPO / "examples" / "execution-environment.yml", work)
    shutil.copy2(tarball, work)
    cmd = [
        tool("ansible-builder"),
        "create",
        "-f",
        str(work / "execution-environment.yml"),
        "-c",
        str(work / "context"),
        "--output-filename",
        "Containerfile",
    ]
    res = run(cmd, ansible_env(tmp_path, isolated=True), tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    context = work / "context"
    assert (context / "_build" / "collections" / tarball.name).is_file()
    galaxy = yaml.safe_load((context / "_build" / "requirements.yml").read_text(encoding="utf-8"))
    # the example names the tarball of galaxy.yml's version
    assert galaxy["collections"] == [{"name": f"/build/collections/{tarball.name}", "type": "file"}]
    containerfile = (context / "Containerfile").read_text(encoding="utf-8")
    assert "introspect.py introspect" in containerfile and "ansible-galaxy collection install" in containerfile
