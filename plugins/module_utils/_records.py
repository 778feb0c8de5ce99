# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: the ownership record, what this collection made on a host.  May change without notice.
"""The ownership record: what netfleet.overlay created on a host, kept by the collection itself.

Release 0.1.0 read ownership from interface aliases. Anyone with NET_ADMIN in an endpoint netns can write an
alias, and names with spaces did not survive the text. The record is JSON in the root-owned 0700 state directory
(:mod:`._statedir`, replaced atomically), so no user input can forge or confuse it::

    {"version": 1,
     "networks":  {name: {"netns": "ovl-256", "vni": 256, "bridge": "br0", "vxlan": "vxlan0"}},
     "endpoints": {name: {"network": name, "netns": "hosta", "veth": "veth-hosta", "ifname": "eth0",
                          "netns_created": true}},
     "peers":     {network name: {vtep: hostname or null}},
     "forwarding": ["eth0"]}

``wireguard`` (only while the host has, or may have, its WireGuard tunnel) is ``{"netns": "ovl-wg", "ifname":
"wg-overlay"}``: the namespace and interface of the tunnel of the encrypted networks (:mod:`._wireguard`), written
before they are made, so that the namespace is the collection's (never someone else's) and goes at teardown.

``forwarding`` (only while it is not empty) names the host-namespace interfaces whose IPv4 forwarding the
collection turned on for egress (:mod:`._egress`): it turns exactly those off again when the last egress network
goes.

``/run`` is emptied at boot like ``/run/netns``, so the record lives exactly as long as what it describes. Every
field read back is checked with the rules that input is checked with; a record that fails them is refused as a
whole, with a message naming the file, the field and the value.
"""

from __future__ import annotations

import json
import os

from ansible_collections.netfleet.overlay.plugins.module_utils import _statedir
from ansible_collections.netfleet.overlay.plugins.module_utils import _validate as v
from ansible_collections.netfleet.overlay.plugins.module_utils._model import NAME_MAX, WIREGUARD_IFNAME, WIREGUARD_NETNS
from ansible_collections.netfleet.overlay.plugins.module_utils._module import ModuleError

RECORD = "ownership.json"
VERSION = 1


class RecordError(ModuleError):
    """The record cannot be read or is not what this collection writes; the message says what to do."""


def path(state_dir: str = _statedir.STATE_DIR) -> str:
    return os.path.join(state_dir, RECORD)


def empty() -> dict:
    return {"version": VERSION, "networks": {}, "endpoints": {}, "peers": {}}


def name(value, field: str) -> str:
    """A network, endpoint or host name as the record keeps it: 1..255 printable characters (spaces, quotes and
    ``=`` are fine: the record is JSON, never split)."""
    if not isinstance(value, str) or not value or len(value) > NAME_MAX or not value.isprintable():
        raise v.InputError(f"{field}: {value!r} is not a valid name (1 to {NAME_MAX} printable characters)")
    return value


def _dict(value, field: str) -> dict:
    if not isinstance(value, dict):
        raise v.InputError(f"{field}: expected a dict, got {type(value).__name__}")
    return value


def _check_keys(entry: dict, keys: tuple, field: str) -> None:
    missing = [key for key in keys if key not in entry]
    if missing:
        raise v.InputError(f"{field}: missing key(s) {', '.join(missing)}")
    extra = sorted(repr(key) for key in entry if key not in keys)
    if extra:
        raise v.InputError(f"{field}: unknown key(s) {', '.join(extra)}")


NETWORK_KEYS = ("netns", "vni", "bridge", "vxlan")
ENDPOINT_KEYS = ("network", "netns", "veth", "ifname", "netns_created")
WIREGUARD_KEYS = ("netns", "ifname")


def wireguard_entry() -> dict:
    """The record's ``wireguard`` entry: the tunnel's namespace and interface."""
    return {"netns": WIREGUARD_NETNS, "ifname": WIREGUARD_IFNAME}


def check(record) -> dict:
    """Validate a decoded record in place; raise :class:`._validate.InputError` naming the field and the value."""
    record = _dict(record, "record")
    version = record.get("version")
    if version != VERSION:
        if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
            raise v.InputError(
                f"version: {version} was written by a newer netfleet.overlay; this one reads version {VERSION}."
                " Run the newer release, or remove the file"
            )
        raise v.InputError(f"version: {version!r} is not a record version this collection wrote ({VERSION})")
    optional = tuple(key for key in ("forwarding", "wireguard") if key in record)
    _check_keys(record, ("version", "networks", "endpoints", "peers", *optional), "record")
    if "wireguard" in record:
        wg = _dict(record["wireguard"], "wireguard")
        _check_keys(wg, WIREGUARD_KEYS, "wireguard")
        if wg["netns"] != WIREGUARD_NETNS:
            raise v.InputError(f"wireguard.netns: {wg['netns']!r} is not {WIREGUARD_NETNS}")
        if wg["ifname"] != WIREGUARD_IFNAME:
            raise v.InputError(f"wireguard.ifname: {wg['ifname']!r} is not {WIREGUARD_IFNAME}")
    if "forwarding" in record:
        forwarding = record["forwarding"]
        if not isinstance(forwarding, list):
            raise v.InputError(f"forwarding: expected a list of interface names, got {type(forwarding).__name__}")
        for index, ifname in enumerate(forwarding):
            v.interface(ifname, f"forwarding[{index}]")
    for key, entry in _dict(record["networks"], "networks").items():
        where = f"networks[{key!r}]"
        name(key, where)
        _check_keys(_dict(entry, where), NETWORK_KEYS, where)
        v.netns_name(entry["netns"], f"{where}.netns")
        entry["vni"] = v.vni(entry["vni"], f"{where}.vni")
        v.interface(entry["bridge"], f"{where}.bridge")
        v.interface(entry["vxlan"], f"{where}.vxlan")
    for key, entry in _dict(record["endpoints"], "endpoints").items():
        where = f"endpoints[{key!r}]"
        name(key, where)
        _check_keys(_dict(entry, where), ENDPOINT_KEYS, where)
        name(entry["network"], f"{where}.network")
        v.netns_name(entry["netns"], f"{where}.netns")
        v.interface(entry["veth"], f"{where}.veth")
        v.interface(entry["ifname"], f"{where}.ifname")
        if not isinstance(entry["netns_created"], bool):
            raise v.InputError(f"{where}.netns_created: {entry['netns_created']!r} is not true or false")
    for key, hosts in _dict(record["peers"], "peers").items():
        where = f"peers[{key!r}]"
        name(key, where)
        checked = {}
        for vtep, host in _dict(hosts, where).items():
            at = f"{where}[{vtep!r}]"
            checked[v.ip(vtep, at)] = None if host is None else name(host, at)
        record["peers"][key] = checked
    return record


def decode(text: str, where: str = RECORD) -> dict:
    """The record in ``text``; raise :class:`RecordError` naming ``where`` when it is not one."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise RecordError(f"{where} is not valid JSON ({exc}); {_REMOVE}") from None
    try:
        return check(data)
    except v.InputError as exc:
        raise RecordError(f"{where}: {exc}; {_REMOVE}") from None


_REMOVE = (
    "remove the file: the next run takes over what netfleet.overlay built on this host from the link aliases in"
    " its ovl-<vni> namespaces"
)


def encode(record: dict) -> str:
    return json.dumps(record, sort_keys=True, indent=1, ensure_ascii=True) + "\n"


def load(state_dir: str = _statedir.STATE_DIR) -> dict | None:
    """The host's record, or None when it has none (a fresh host, or one that release 0.1.0 converged).

    Never creates the state directory: facts are read on hosts that were never converged.
    """
    where = path(state_dir)
    if not os.path.lexists(state_dir):
        return None
    try:
        text = _statedir.read_text(RECORD, state_dir)
    except _statedir.StateDirError as exc:
        raise RecordError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordError(f"{where} cannot be read ({exc}); {_REMOVE}") from None
    return None if text is None else decode(text, where)


def save(record: dict, state_dir: str = _statedir.STATE_DIR) -> None:
    """Replace the record atomically; raise :class:`RecordError` naming the file."""
    try:
        _statedir.write_text(RECORD, encode(record), state_dir)
    except (_statedir.StateDirError, OSError) as exc:
        raise RecordError(f"cannot write {path(state_dir)}: {exc}") from None
