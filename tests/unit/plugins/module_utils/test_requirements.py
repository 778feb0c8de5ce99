# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for what overlay_facts reports a host lacks (unmet requirements)."""

from __future__ import annotations

import pytest

from ansible_collections.netfleet.overlay.plugins.module_utils._requirements import (
    CODES,
    satisfies,
    unmet,
    version_tuple,
)

NEEDS = {"pyroute2": ">=0.9.1,<0.10", "kernel": "3.10", "nft": True, "dnsmasq": True}


def facts(**changes):
    good = {
        "pyroute2": True,
        "pyroute2_version": "0.9.7",
        "nft": "/usr/sbin/nft",
        "dnsmasq": "/usr/sbin/dnsmasq",
        "kernel": {"release": "6.1.0-18-amd64", "version": [6, 1], "vxlan": True},
        "vtep": "198.18.1.1",
    }
    good.update(changes)
    return good


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.9.7", (0, 9, 7)), ("6.1.0-18-amd64", (6, 1, 0)), ([6, 1], (6, 1)), ("", None), ("abc", None), (None, None)],
)
def test_version_tuple(text, expected):
    assert version_tuple(text) == expected


@pytest.mark.parametrize(
    ("version", "spec", "expected"),
    [
        ("0.9.7", ">=0.9.1,<0.10", True),
        ("0.9.1", ">=0.9.1,<0.10", True),
        ("0.9.0", ">=0.9.1,<0.10", False),
        ("0.10", ">=0.9.1,<0.10", False),
        ("0.7.2", ">=0.9.1,<0.10", False),
        ([3, 10], "3.10", True),  # a bare version means >=
        ([3, 9], "3.10", False),
        ("6.1", "==6.1.0", True),
        ("6.1", "!=6.1", False),
        ("1.0", ">0.9, <=1.0", True),
        ("garbage", ">=0.1", False),
    ],
)
def test_satisfies(version, spec, expected):
    assert satisfies(version, spec) is expected


def test_an_unreadable_spec_is_an_error_not_a_pass():
    with pytest.raises(ValueError, match=r"cannot read the version requirement '~=1.0'"):
        satisfies("1.0", "~=1.0")


def test_a_good_host_lacks_nothing():
    assert unmet(facts(), NEEDS, "present") == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"pyroute2": False, "pyroute2_version": None}, ["pyroute2_missing"]),
        ({"pyroute2_version": "0.7.2"}, ["pyroute2_version"]),
        ({"pyroute2": False, "pyroute2_version": "0.9.7"}, ["pyroute2_import"]),
        ({"pyroute2": False, "pyroute2_version": "0.7.2"}, ["pyroute2_version", "pyroute2_import"]),
        ({"nft": None}, ["nft"]),
        ({"dnsmasq": None, "vtep": None}, ["dnsmasq", "vtep"]),
        ({"kernel": {"release": "3.2.0", "version": [3, 2], "vxlan": True}}, ["kernel"]),
        ({"kernel": {"release": "6.1.0", "version": [6, 1], "vxlan": False}}, ["vxlan"]),
        ({"vtep": None}, ["vtep"]),
        ({"vtep": "", "nft": None, "pyroute2_version": "0.7.2"}, ["pyroute2_version", "nft", "vtep"]),
    ],
)
def test_each_gap_is_named_in_the_order_a_user_fixes_them(changes, expected):
    found = unmet(facts(**changes), NEEDS, "present")
    assert found == expected
    assert found == sorted(found, key=CODES.index)


def test_a_host_to_tear_down_only_needs_pyroute2():
    broken = facts(nft=None, dnsmasq=None, vtep=None, kernel={"release": "3.2", "version": [3, 2], "vxlan": False})
    assert unmet(broken, NEEDS, "absent") == []
    assert unmet({**broken, "pyroute2_version": "0.7.2"}, NEEDS, "absent") == ["pyroute2_version"]


def test_nft_only_when_asked():
    assert unmet(facts(nft=None), {**NEEDS, "nft": False}, "present") == []


def test_dnsmasq_only_when_asked():
    assert unmet(facts(dnsmasq=None), {**NEEDS, "dnsmasq": False}, "present") == []
