# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the packaging tests: the collection as users get it, built and installed from its tarball.

``tarball`` runs ``ansible-galaxy collection build`` on this checkout; ``installed`` installs that tarball offline
into a temp directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging_helpers import REPO, Installed, build, install


@pytest.fixture(scope="session")
def tarball(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("nfl-build")
    return build(REPO, tmp / "dist", tmp)


@pytest.fixture(scope="session")
def installed(tarball, tmp_path_factory) -> Installed:
    tmp = tmp_path_factory.mktemp("nfl-installed")
    root = install(tarball, tmp / "collections", tmp)
    return Installed(tarball=tarball, collections=tmp / "collections", root=root, tmp=tmp)
