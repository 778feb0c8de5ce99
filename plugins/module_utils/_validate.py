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

from ansible_collections.netfleet.overlay.plugins.module_utils import _model
from ansible_collections.netfleet.overlay.plugins.module_utils._model import NAME_MAX, check_mac


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
