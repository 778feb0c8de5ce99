# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: what overlay_host shows in diff mode.  May change without notice.
"""The diff of ``overlay_host``: per network its objects and its table lines, before and after.

Every object is shown with the attributes that the planners compare, so drift made by hand shows up as the
attribute that differs (``"learning": true`` -> ``false``, a vni, a missing veth peer, a missing netns), and the
tables as the lines ``bridge fdb show`` and ``ip neigh show`` print.
"""

from __future__ import annotations

from ansible_collections.netfleet.overlay.plugins.module_utils import _table
from ansible_collections.netfleet.overlay.plugins.module_utils._model import WIREGUARD_IFNAME, WIREGUARD_NETNS

FIELDS = {
    "bridge": ("mtu", "up"),
    "vxlan": ("vni", "port", "local", "dev", "learning", "proxy", "master", "mtu", "up"),
    "veth": ("netns", "master", "mtu", "up", "peer", "peer_netns", "address", "mac", "peer_mtu", "peer_up"),
}


def object_view(kind: str, state: dict | None) -> dict | None:
    """The compared attributes of one object (None when it does not exist)."""
    if not state:
        return None
    return {key: state[key] for key in FIELDS[kind] if key in state}


def table_lines(spec, entries: list[dict], dev: str) -> list[str]:
    return _table.render_lines(spec, entries, dev).splitlines()


def network_views(net: dict, objects: dict, tables: dict) -> dict:
    """``{'before': view, 'after': view}`` of one network from its object results and table results."""
    views = {}
    for side in ("before", "after"):
        views[side] = {
            "netns": net["netns"] if objects["netns"][side] else None,
            "bridge": object_view("bridge", objects["bridge"][side]),
            "vxlan": object_view("vxlan", objects["vxlan"][side]),
            "endpoints": {name: object_view("veth", r[side]) for name, r in objects["endpoints"].items()},
            "fdb": table_lines(_table.FDB, tables["fdb"][side], net["vxlan"]),
            "neigh": table_lines(_table.NEIGH, tables["neigh"][side], net["vxlan"]),
        }
        if net.get("encrypted"):  # its vxlan0 is made in ovl-wg, on the tunnel address (the view's local)
            views[side]["encrypted"] = True
    return views


def owned_names(owned: dict | None) -> dict:
    owned = owned or {}
    return {"networks": sorted(owned.get("networks", {})), "endpoints": sorted(owned.get("endpoints", {}))}


def predicted_owned(wanted: list[dict]) -> dict:
    """What the collection owns after a successful run (check mode cannot read it back)."""
    return {
        "networks": sorted(net["name"] for net in wanted),
        "endpoints": sorted(ep["name"] for net in wanted for ep in net["endpoints"]),
    }


def removed_text(removed: dict, owned: dict, tunnel: bool = False) -> str:
    """The networks and endpoints a run removes, one line each, by name (the diff's ``prepared`` text); with
    ``tunnel``, also the WireGuard tunnel of the encrypted networks."""
    lines = []
    for name in removed["endpoints"]:
        ep = owned["endpoints"].get(name) or {}
        if ep.get("attached"):  # the user's netns: only the endpoint's interface goes
            where = f"interface {ep.get('ifname')} in netns {ep.get('netns')}, which stays"
        else:
            where = f"netns {ep.get('netns')}"
        lines.append(f"remove endpoint {name} (network {ep.get('network')}, {where})")
    for name in removed["networks"]:
        net = owned["networks"].get(name) or {}
        lines.append(f"remove network {name} (vni {net.get('vni')}, netns {net.get('netns')})")
    if tunnel:
        where = f"{WIREGUARD_IFNAME} in netns {WIREGUARD_NETNS}"
        lines.append(f"remove the WireGuard tunnel ({where}, its daemon and keys)")
    return "".join(line + "\n" for line in lines)
