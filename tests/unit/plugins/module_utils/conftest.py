# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the module_utils unit tests."""

from __future__ import annotations

import pytest

from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl import namespace as nl


@pytest.fixture
def existing(monkeypatch):
    """``existing(*names)``: from now on exactly these named netns exist (``netns_exists``), as on a host."""

    def use(*names):
        monkeypatch.setattr(nl, "netns_exists", lambda name: name in names)

    return use
