# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""docs/architecture.md stays true: every path it names exists, every production file is named in it or in its
picture, and the picture is rendered from its source (``make architecture``)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "architecture.md"
DOT = REPO / "docs" / "images" / "architecture.dot"
SVG = REPO / "docs" / "images" / "architecture.svg"

pytestmark = pytest.mark.packaging


def _named() -> str:
    return DOC.read_text() + DOT.read_text()


def test_every_path_the_page_names_exists():
    missing = []
    for named in re.findall(r"`((?:plugins|roles|tools|tests|docs|playbooks|inventories)/[^`\s]*)`", DOC.read_text()):
        path = named.split("<")[0].rstrip("/")  # plugins/modules/<module>.py: the directory
        if not (REPO / path).exists():
            missing.append(named)
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"


def test_every_production_file_is_on_the_page():
    """A newcomer finds every engine file from the page: module_utils, plugin_utils, _rtnl, the role's tasks."""
    text = _named()
    files = [
        *sorted((REPO / "plugins" / "module_utils").rglob("*.py")),
        *sorted((REPO / "plugins" / "plugin_utils").glob("*.py")),
        *sorted((REPO / "roles" / "overlay" / "tasks").glob("*.yml")),
    ]
    unnamed = [str(p.relative_to(REPO)) for p in files if p.name != "__init__.py" and p.name not in text]
    assert not unnamed, f"docs/architecture.md (or its picture) does not say where these live: {unnamed}"


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz (make deps) renders the picture")
def test_the_picture_is_rendered_from_its_source():
    rendered = subprocess.run(["dot", "-Tsvg", str(DOT)], check=True, capture_output=True, text=True).stdout
    assert SVG.read_text() == rendered, "docs/images/architecture.svg is stale: run make architecture"
