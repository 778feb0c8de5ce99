# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: the modules' input checks, on the rules of _model.  May change without notice.
"""The host side's argument-shape checks: normalise a module's input or raise :class:`InputError` naming the field.

The rules (limits, the integer, MTU, MAC and interface name rules) are :mod:`._model`'s, which the controller
applies too; this file gives them the modules' labels (``field: value ...``) and error class, and adds the one
shape only modules take (a netns name: any file name).  They run before any kernel access, so bad input never
causes a partial change.
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.netfleet.overlay.plugins.module_utils import _model
from ansible_collections.netfleet.overlay.plugins.module_utils._model import NAME_MAX, ZERO_MAC, check_mac, kind


class InputError(ValueError):
    """Bad user input; the message names the field and the value."""


def mac(value, field: str, *, unicast: bool = False, allow_zero: bool = False) -> str:
    """Normalise a MAC to lower-case colon form.

    ``unicast`` rejects multicast/broadcast addresses (low bit of the first octet); ``allow_zero`` admits
    ``00:00:00:00:00:00`` (the vxlan head-end flood entry).
    """
    return check_mac(value, f"{field}:", unicast=unicast, allow_zero=allow_zero, error=InputError)


def no_scope_id(value, field: str) -> str:
    """The text of an address, refused when it carries an IPv6 scope ID (see :func:`._model.no_scope_id`)."""
    return _model.no_scope_id(value, f"{field}:", error=InputError)


def ip(value, field: str, *, family: int | None = None) -> str:
    """Normalise an IPv4/IPv6 address (no prefix, no scope ID); ``family`` (4 or 6) restricts it."""
    text = no_scope_id(value, field)  # an InputError is a ValueError: check it outside the try
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise InputError(f"{field}: {value!r} is not an IP address") from None
    if family and addr.version != family:
        raise InputError(f"{field}: {value!r} is an IPv{addr.version} address; IPv{family} is needed here")
    return addr.compressed


def interface(value, field: str) -> str:
    """A Linux interface name (:func:`_model.check_ifname`)."""
    return _model.check_ifname(value, f"{field}:", error=InputError)


def netns_name(value, field: str) -> str:
    """A named network namespace (a file name under /run/netns)."""
    text = str(value)
    if not text or len(text) > NAME_MAX or "/" in text or text in (".", "..") or any(c.isspace() for c in text):
        raise InputError(f"{field}: {value!r} is not a valid netns name (a file name: no '/' or whitespace)")
    return text


def vni(value, field: str = "vni") -> int:
    return _model.check_vni(value, f"{field}:", error=InputError)


def port(value, field: str = "port") -> int:
    return _model.check_port(value, f"{field}:", error=InputError)


def mtu(value, field: str = "mtu") -> int:
    return _model.check_mtu(value, f"{field}:", error=InputError)


def interface_address(value, field: str) -> tuple[str, int]:
    """An address with prefix length, ``10.213.0.2/24``; returns ``(ip, prefixlen)``."""
    text = no_scope_id(value, field)
    try:
        iface = ipaddress.ip_interface(text)
    except ValueError:
        raise InputError(f"{field}: {value!r} is not an address with prefix length (like 10.213.0.2/24)") from None
    if "/" not in str(value):
        raise InputError(f"{field}: {value!r} needs a prefix length (like 10.213.0.2/24)")
    return iface.ip.compressed, iface.network.prefixlen


# --- many entries at once -----------------------------------------------------------------------------------------
# A table module takes 100,000 entries in one run: each value is first matched against its normal form (one
# compiled regex, no allocation), and only a value that is not already normal goes through the full check above,
# which normalises it or raises the message that names it.  The result is the same either way.

_NORMAL_MAC = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}").fullmatch
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_NORMAL_V4 = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}").fullmatch  # what ipaddress prints: no leading zeros
_MULTICAST = frozenset("13579bdf")  # the second hex digit of a MAC whose low (group) bit is set


class Field:
    """One field of a table entry: how to check a value of it fast, and fully.

    ``kind``: ``unicast_mac`` (no multicast, broadcast or all-zero MAC), ``mac_or_zero`` (a unicast MAC or the
    all-zero one) or ``ip`` (IPv4 or IPv6, no scope ID).  :meth:`normal` returns the normal form of a value, or
    raises :class:`InputError` naming the entry and the field; values already in normal form (the common case)
    cost one regex match, other texts are checked once per distinct text (FDB destinations repeat: a few VTEPs
    for thousands of MACs).
    """

    __slots__ = ("_cache", "_fast", "kind", "name")

    def __init__(self, name: str, kind_: str):
        if kind_ not in ("unicast_mac", "mac_or_zero", "ip"):
            raise ValueError(f"unknown field kind {kind_!r}")
        self.name, self.kind = name, kind_
        self._fast = _NORMAL_V4 if kind_ == "ip" else _NORMAL_MAC
        self._cache: dict = {}

    def normal(self, value, index: int | None = None, what: str = "entries"):
        """``value`` in normal form; an error names it ``what[index].<field>`` (the field alone without index)."""
        if value.__class__ is str and self._fast(value) is not None:
            if self.kind == "ip":
                return value
            if value[1] not in _MULTICAST and (value != ZERO_MAC or self.kind == "mac_or_zero"):
                return value
        try:
            return self._cache[value]
        except (KeyError, TypeError):  # TypeError: an unhashable value (a list, a dict): the full check names it
            pass
        where = self.name if index is None else f"{what}[{index}].{self.name}"
        if self.kind == "ip":
            out = ip(value, where)
        else:
            out = mac(value, where, unicast=True, allow_zero=self.kind == "mac_or_zero")
        if value.__class__ is str:
            self._cache[value] = out
        return out


def table_entries(entries, key: Field, member: Field, *, member_required: str = "", additive_key=None, what="entries"):
    """Check and normalise a table module's entries in one pass: ``[(key, member), ...]`` in the given order.

    Each entry is a dict with the key field (required) and the member field, and nothing else.  The member is
    required when ``member_required`` is given (it ends the message: `` with state=merged``), else a missing
    member is ``None``.  A key appears once, except ``additive_key``, which appears once per member.  Every error
    names the entry's index, its field and its value (``entries[3].mac: '01:00:5e:00:00:01' is a
    multicast/broadcast MAC ...``), and a duplicate names the earlier entry too.
    """
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise InputError(f"{what}: expected a list of entries (dicts), got {kind(entries)}")
    kf, mf = key.name, member.name
    allowed = f"an entry takes {kf} and {mf}"
    out: list[tuple] = []
    append = out.append
    seen: dict = {}  # an exclusive key, or (additive key, member) -> index of the entry that gave it
    for i, raw in enumerate(entries):
        if raw.__class__ is not dict and not isinstance(raw, dict):
            raise InputError(f"{what}[{i}]: expected a dict with {kf} and {mf}, got {raw!r}")
        k, m = raw.get(kf), raw.get(mf)
        if len(raw) != 2 or k is None or m is None or k == "" or m == "":  # rare: name what is wrong, in order
            unknown = set(raw) - {kf, mf}
            if unknown:
                shown = ", ".join(sorted(map(str, unknown)))
                raise InputError(f"{what}[{i}]: unknown key(s) {shown} ({allowed})")
            if k is None or k == "":
                raise InputError(f"{what}[{i}].{kf} is required")
            if m is None or m == "":
                if member_required:
                    raise InputError(f"{what}[{i}].{mf} is required{member_required}")
                m = None
        k = key.normal(k, i, what)
        if m is not None:
            m = member.normal(m, i, what)
        dup = (k, m) if k == additive_key else k
        if dup in seen:
            shown = k if m is None or k != additive_key else f"{k} {m}"
            raise InputError(f"{what}[{i}]: duplicate key {shown} (already given as {what}[{seen[dup]}])")
        seen[dup] = i
        append((k, m))
    return out
