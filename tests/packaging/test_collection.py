# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection as users get it: the tarball's contents, and every plugin's docs from the installed copy.

The docs are rendered by ``ansible-doc`` with ANSIBLE_COLLECTIONS_PATH set to the install directory only and
from a working directory outside the repo, so a plugin that was left out of the tarball, or whose docs only
resolve inside the checkout (a doc fragment, a module_utils import), fails here.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml
from devenv import ansible_env
from packaging_helpers import REPO, build, run, tool

pytestmark = pytest.mark.packaging

MODULES = sorted(p.stem for p in (REPO / "plugins" / "modules").glob("*.py") if not p.stem.startswith("_"))
FILTERS = sorted(p.stem for p in (REPO / "plugins" / "filter").glob("*.py") if not p.stem.startswith("_"))
CONNECTIONS = sorted(p.stem for p in (REPO / "plugins" / "connection").glob("*.py") if not p.stem.startswith("_"))
ROLES = sorted(p.name for p in (REPO / "roles").iterdir() if (p / "tasks" / "main.yml").is_file())
GALAXY = yaml.safe_load((REPO / "galaxy.yml").read_text(encoding="utf-8"))

# Nothing under these (or named like this) belongs in the tarball. Each is planted in a copy of the checkout
# before building, so the test proves build_ignore, not the cleanliness of whoever runs it.
JUNK = [
    ".venv/bin/python",
    ".lab/state.json",
    ".lab/hosts/h1.pid",
    ".ansible/collections/ansible_collections/x/y/MANIFEST.json",
    "molecule/default/.ansible/tmp/x",
    "molecule/default/.molecule/state.yml",
    "tests/output/sanity-tree/x.py",
    "tests/output/.tmp/x",
    "tools/bench/out/results.json",
    ".pytest_cache/v/cache/nodeids",
    ".ruff_cache/0.1/x",
    ".mypy_cache/x",
    ".tox/py/x",
    ".cache/x",
    "plugins/modules/__pycache__/fdb.cpython-311.pyc",
    "plugins/module_utils/_table.pyc",
    "netfleet-overlay-0.0.9.tar.gz",
    "other-build.tar.gz",
    "tools/bench/data.tar.gz",
    ".git/HEAD",
    ".ci/run",
    ".gitignore",
    "changelogs/.plugin-cache.yaml",
    "ansible.log",
    "htmlcov/index.html",
    ".coverage",
]
# What a user of the collection needs: every plugin, the role, the playbooks and the metadata.
REQUIRED = [
    "MANIFEST.json",
    "FILES.json",
    "README.md",
    "CHANGELOG.md",
    "changelogs/changelog.yaml",
    "changelogs/config.yaml",
    "meta/runtime.yml",
    "meta/execution-environment.yml",
    "meta/ee-requirements.txt",
    "meta/ee-bindep.txt",
    "playbooks/site.yml",
    "playbooks/verify.yml",
    "playbooks/teardown.yml",
    "roles/overlay/meta/argument_specs.yml",
    "roles/overlay/defaults/main.yml",
    "docs/awx.md",
    "examples/execution-environment.yml",
    *[f"plugins/modules/{m}.py" for m in MODULES],
    *[f"plugins/filter/{f}.py" for f in FILTERS],
    *[f"plugins/connection/{c}.py" for c in CONNECTIONS],
]


def members(tarball: Path) -> list[str]:
    with tarfile.open(tarball) as tar:
        return [m.name.rstrip("/") for m in tar.getmembers()]


def checkout_copy(dest: Path) -> Path:
    """The files git would commit (tracked and new, not ignored), copied to ``dest``."""
    listing = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    for rel in filter(None, listing.split("\0")):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def test_tarball_is_named_after_galaxy_yml(tarball):
    assert tarball.name == f"{GALAXY['namespace']}-{GALAXY['name']}-{GALAXY['version']}.tar.gz"
    with tarfile.open(tarball) as tar:
        manifest = json.load(tar.extractfile("MANIFEST.json"))
    info = manifest["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == ("netfleet", "overlay", GALAXY["version"])
    assert info["tags"] and info["license"] == ["GPL-3.0-or-later"]


def test_tarball_has_what_users_need(tarball):
    names = set(members(tarball))
    assert not [path for path in REQUIRED if path not in names]


def test_build_ignore_keeps_local_state_out(tmp_path):
    src = checkout_copy(tmp_path / "src")
    for rel in JUNK:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text("junk\n", encoding="utf-8")
    names = members(build(src, tmp_path / "dist", tmp_path))
    leaked = [rel for rel in JUNK if rel in names]
    assert not leaked, f"build_ignore lets these into the tarball: {leaked}"
    bad = re.compile(
        r"(^|/)(\.venv|\.lab|\.ansible|\.molecule|__pycache__|\.git|\.pytest_cache)(/|$)|\.pyc$|\.tar\.gz$"
    )
    assert not [name for name in names if bad.search(name)]
    assert "plugins/modules/fdb.py" in names
    # the developers' tooling stays out: a user needs none of it
    dev = re.compile(r"^(tests|tools|molecule|bench)(/|$)|^(Makefile|ansible\.cfg|pyproject\.toml)$")
    assert not [name for name in names if dev.search(name)]


# --- ansible-doc against the installed copy ----------------------------------------------------------------------


def ansible_doc(installed, *args: str) -> subprocess.CompletedProcess:
    env = ansible_env(installed.tmp, isolated=True, collections=installed.collections)
    return run([tool("ansible-doc"), *args], env, installed.tmp)


def test_ansible_doc_lists_every_module(installed):
    res = ansible_doc(installed, "-l", "netfleet.overlay")
    assert res.returncode == 0, res.stderr
    listed = sorted(line.split()[0] for line in res.stdout.splitlines() if line.strip())
    assert listed == [f"netfleet.overlay.{m}" for m in MODULES], res.stdout
    print(res.stdout)


@pytest.mark.parametrize(
    ("kind", "name"),
    [("module", m) for m in MODULES]
    + [("filter", f) for f in FILTERS]
    + [("connection", c) for c in CONNECTIONS]
    + [("role", r) for r in ROLES],
)
def test_ansible_doc_renders(installed, kind, name):
    fqcn = f"netfleet.overlay.{name}"
    res = ansible_doc(installed, "-t", kind, fqcn)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ERROR" not in res.stderr and "WARNING" not in res.stderr, res.stderr
    if kind == "role":
        assert res.stdout.startswith(f"> ROLE: *{fqcn}* ({installed.root})"), res.stdout[:300]
        assert re.search(r"^ENTRY POINT: \*?main\*? - ", res.stdout, re.MULTILINE), res.stdout[:300]
        assert "overlay_networks" in res.stdout
    else:
        header = res.stdout.splitlines()[0]
        assert header.startswith(f"> {kind.upper()} {fqcn} ("), header
        # rendered from the installed copy, not from the checkout
        assert f"({installed.root}/plugins/{'modules' if kind == 'module' else kind}/{name}.py)" in header, header
        assert len(res.stdout.splitlines()) > 10


def test_ansible_doc_lists_every_filter(installed):
    res = ansible_doc(installed, "-t", "filter", "-l", "netfleet.overlay")
    assert res.returncode == 0, res.stderr
    assert sorted(line.split()[0] for line in res.stdout.splitlines() if line.strip()) == [
        f"netfleet.overlay.{f}" for f in FILTERS
    ]


def test_site_playbook_is_addressable_by_fqcn(installed):
    """``import_playbook: netfleet.overlay.site`` resolves to the installed collection's playbooks/site.yml."""
    play = installed.tmp / "fqcn-playbook.yml"
    play.write_text("- ansible.builtin.import_playbook: netfleet.overlay.site\n", encoding="utf-8")
    env = ansible_env(installed.tmp, isolated=True, collections=installed.collections)
    res = run([tool("ansible-playbook"), "-i", "localhost,", "--list-tasks", str(play)], env, installed.tmp)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Converge the overlay networks" in res.stdout
    assert "netfleet.overlay.overlay : Compute the whole fleet's overlay and every host's peer tables" in res.stdout


def test_ansible_lint_galaxy_and_ee_files():
    """ansible-lint (production profile, incl. the galaxy rule) on galaxy.yml and the EE definitions."""
    files = ["galaxy.yml", "meta/execution-environment.yml", "examples/execution-environment.yml"]
    res = subprocess.run(
        [tool("ansible-lint"), "--offline", *files],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=180,
        check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr
