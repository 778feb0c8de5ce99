# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the lab tests: build fleets with tools/netfleet-lab and always tear them down.

Every lab lives in its own pytest temp directory, which is also the marker that `netfleet-lab down`
checks before it kills a holder, so labs of concurrent test runs never touch each other.
"""

from __future__ import annotations

import pytest
from devenv import ansible_env
from lab_helpers import IS_ROOT, Lab, build_lab


@pytest.fixture(scope="session")
def tmp_ansible(tmp_path_factory) -> dict[str, str]:
    return ansible_env(tmp_path_factory.mktemp("nfl-ansible"))


@pytest.fixture(scope="session")
def lab3(tmp_path_factory):
    """A 3-host lab in nsenter mode, shared by the whole session."""
    if not IS_ROOT:
        pytest.skip("the lab needs root (it creates namespaces); run as root")
    yield from build_lab(tmp_path_factory.mktemp("nfl-lab"), 3)


@pytest.fixture
def lab_dir(tmp_path_factory):
    """A fresh directory for a lab that a test builds itself; whatever lab is left there is removed."""
    path = tmp_path_factory.mktemp("nfl-lab")
    yield path
    if path.exists():
        res = Lab(path, 1).down()
        assert res.returncode == 0, f"netfleet-lab down failed:\n{res.stdout}\n{res.stderr}"
