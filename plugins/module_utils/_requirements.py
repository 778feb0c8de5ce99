# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a host lacks for the overlay, judged from its facts (overlay_facts' ``requirements`` option).

Pure functions on the facts dict, so the role's preflight is one skipped task when nothing is missing: the
module lists the unmet requirements as codes, in the order a user fixes them, and the role turns the first one
into a message that says what to install.
"""

from __future__ import annotations

import re

# In the order a user fixes them. The ones after the pyroute2 codes only apply to a host that is to be present.
CODES = (
    "pyroute2_missing",
    "pyroute2_version",
    "pyroute2_import",
    "nft",
    "dnsmasq",
    "wireguard_missing",
    "kernel",
    "vxlan",
    "vtep",
)

_NUMBERS = re.compile(r"^\s*(\d+(?:\.\d+)*)")
_CLAUSE = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(\d+(?:\.\d+)*)\s*$")


def version_tuple(text) -> tuple[int, ...] | None:
    """The leading dotted numbers of a version (``0.9.7``, ``6.1.0-18-amd64`` -> ``(6, 1, 0)``), or None."""
    if isinstance(text, (list, tuple)):
        text = ".".join(str(part) for part in text)
    match = _NUMBERS.match(str(text or ""))
    return tuple(int(part) for part in match.group(1).split(".")) if match else None


def _padded(left: tuple[int, ...], right: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    size = max(len(left), len(right))
    return left + (0,) * (size - len(left)), right + (0,) * (size - len(right))


def satisfies(version, spec: str) -> bool:
    """Whether ``version`` meets every clause of ``spec`` (``>=0.9.1,<0.10``; a bare version means ``>=``).

    Raises ValueError for a spec it cannot read, so a typo in the requirement is never a silent pass.
    """
    have = version_tuple(version)
    if have is None:
        return False
    for clause in str(spec).split(","):
        if not clause.strip():
            continue
        match = _CLAUSE.match(clause) or _CLAUSE.match(">=" + clause)
        if match is None:
            raise ValueError(f"cannot read the version requirement {spec!r} (clauses like >=0.9.1,<0.10)")
        mine, theirs = _padded(have, version_tuple(match.group(2)))
        test = {
            ">=": mine >= theirs,
            "<=": mine <= theirs,
            "==": mine == theirs,
            "!=": mine != theirs,
            ">": mine > theirs,
            "<": mine < theirs,
        }[match.group(1)]
        if not test:
            return False
    return True


def unmet(facts: dict, requirements: dict, state: str) -> list[str]:
    """The codes of :data:`CODES` that ``facts`` (overlay_facts') do not meet, in that order.

    ``requirements``: ``pyroute2`` (a version spec), ``kernel`` (the oldest release), ``nft`` (whether the VTEP
    allowlist or an egress network needs nft), ``dnsmasq`` (whether the host serves a dns network's names),
    ``wireguard`` (whether the host has an encrypted network: it needs ``wg``, and the kernel's WireGuard or
    ``wireguard-go``). Only pyroute2 is checked for a host that is to be absent (its teardown needs it).
    """
    codes = []
    version = facts.get("pyroute2_version")
    if not facts.get("pyroute2") and not version:
        codes.append("pyroute2_missing")
    spec = requirements.get("pyroute2")
    if version and spec and not satisfies(version, spec):
        codes.append("pyroute2_version")
    if version and not facts.get("pyroute2"):
        codes.append("pyroute2_import")  # its metadata is there, its package is not where Python imports from
    if state != "present":
        return codes
    if requirements.get("nft") and not facts.get("nft"):
        codes.append("nft")
    if requirements.get("dnsmasq") and not facts.get("dnsmasq"):
        codes.append("dnsmasq")
    if requirements.get("wireguard") and not (facts.get("wg") and (facts.get("wireguard") or {}).get("implementation")):
        codes.append("wireguard_missing")
    kernel = facts.get("kernel") or {}
    if requirements.get("kernel") and not satisfies(kernel.get("version") or "0", str(requirements["kernel"])):
        codes.append("kernel")
    if not kernel.get("vxlan"):
        codes.append("vxlan")
    if not facts.get("vtep"):
        codes.append("vtep")
    return codes
