# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The changelog (antsibull-changelog): fragments and changelog.yaml lint clean, and CHANGELOG.md is generated.

`make changelog` folds new fragments into the release of galaxy.yml's version and rewrites CHANGELOG.md.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml
from devenv import ansible_env
from packaging_helpers import REPO, tool

pytestmark = pytest.mark.packaging

GALAXY = yaml.safe_load((REPO / "galaxy.yml").read_text(encoding="utf-8"))


def antsibull(tmp, *args: str, cwd=REPO):
    """antsibull-changelog from the collection root ``cwd`` (it finds galaxy.yml and changelogs/ there)."""
    return subprocess.run(
        [tool("antsibull-changelog"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=ansible_env(tmp, isolated=True),
        timeout=120,
        check=False,
    )


def test_fragments_lint_clean(tmp_path):
    res = antsibull(tmp_path, "lint")
    assert res.returncode == 0 and not res.stdout.strip(), res.stdout + res.stderr


def test_changelog_yaml_lints_clean(tmp_path):
    res = antsibull(tmp_path, "lint-changelog-yaml", "changelogs/changelog.yaml")
    assert res.returncode == 0 and not res.stdout.strip(), res.stdout + res.stderr


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in str(text).split("."))


def _version_added(path) -> str | None:
    """The module's own version_added (the top level of its DOCUMENTATION), or None."""
    source = path.read_text(encoding="utf-8")
    doc = source.split('DOCUMENTATION = r"""', 1)[1].split('"""', 1)[0]
    return yaml.safe_load(doc).get("version_added")


def test_galaxy_version_is_released_with_a_summary():
    changes = yaml.safe_load((REPO / "changelogs" / "changelog.yaml").read_text(encoding="utf-8"))
    release = changes["releases"][GALAXY["version"]]
    assert release["changes"]["release_summary"].strip()
    # every module and plugin is announced in the release that brought it
    releases = changes["releases"].values()
    modules = {m["name"] for r in releases for m in r.get("modules", [])}
    filters = {p["name"] for r in releases for p in r.get("plugins", {}).get("filter", [])}
    connections = {p["name"] for r in releases for p in r.get("plugins", {}).get("connection", [])}
    plugins = REPO / "plugins"
    # a module added since the last release (version_added above galaxy.yml's version) is announced when that
    # release is made (antsibull-changelog release finds it), and not before
    released, unreleased = set(), set()
    for path in (plugins / "modules").glob("*.py"):
        if not path.stem.startswith("_"):
            added = _version_added(path)
            (unreleased if added and _version(added) > _version(GALAXY["version"]) else released).add(path.stem)
    assert modules == released
    assert not modules & unreleased
    assert filters == {p.stem for p in (plugins / "filter").glob("*.py") if not p.stem.startswith("_")}
    assert connections == {p.stem for p in (plugins / "connection").glob("*.py") if not p.stem.startswith("_")}


def test_changelog_md_is_generated_from_changelog_yaml(tmp_path):
    """CHANGELOG.md is exactly what antsibull-changelog makes of changelogs/changelog.yaml."""
    copy = tmp_path / "ansible_collections" / "netfleet" / "overlay"
    copy.mkdir(parents=True)
    shutil.copy2(REPO / "galaxy.yml", copy / "galaxy.yml")
    shutil.copytree(REPO / "changelogs", copy / "changelogs", ignore=shutil.ignore_patterns("fragments"))
    (copy / "changelogs" / "fragments").mkdir()
    res = antsibull(tmp_path, "generate", cwd=copy)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (copy / "CHANGELOG.md").read_text(encoding="utf-8") == (REPO / "CHANGELOG.md").read_text(encoding="utf-8"), (
        "CHANGELOG.md is out of date: run make changelog"
    )
