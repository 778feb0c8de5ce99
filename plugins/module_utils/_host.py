# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: converge one host's whole overlay state in one module run.  May change without notice.
"""The composite apply behind ``netfleet.overlay.overlay_host``.

It drives the same object planners (:mod:`._links`) and table reconciler (:mod:`._table`) as the single-object
modules, in dependency order: purge what is no longer wanted (endpoints, then networks), then per network the
overlay netns, br0, vxlan0, the endpoints, and last the ARP and FDB tables (``overridden``).

The VTEP allowlist (:mod:`._firewall`) is put in place before the first network is created, and removed after the
last one is gone.  The whole converge holds the host lock (:mod:`._lock`), so concurrent runs on one host queue.
"""

from __future__ import annotations

import copy

from ansible_collections.netfleet.overlay.plugins.module_utils import (
    _discover,
    _firewall,
    _host_diff,
    _host_preflight,
    _lock,
    _table,
)
from ansible_collections.netfleet.overlay.plugins.module_utils import _netlink as nl
from ansible_collections.netfleet.overlay.plugins.module_utils import _validate as v
from ansible_collections.netfleet.overlay.plugins.module_utils._links import Bridge, Netns, Veth, Vxlan
from ansible_collections.netfleet.overlay.plugins.module_utils._objects import Handles, ObjectError


class HostConverger:
    def __init__(self, params: dict, check_mode: bool, nft: _firewall.Nft | None = None):
        self.p = params
        self.check_mode = check_mode
        self.nft = nft
        self.commands: list[str] = []
        self.changed = False
        self.networks: dict = {}
        self.views: dict = {}  # network -> {'before', 'after'} for diff mode

    # -- helpers -----------------------------------------------------------------------------------------------

    def _object(self, handles, cls, params) -> dict:
        result = cls(params, handles, self.check_mode).execute()
        self._record(result)
        return result

    def _record(self, result: dict) -> None:
        self.changed |= bool(result["changed"])
        self.commands.extend(result["commands"])

    def _remove_netns(self, handles, name: str) -> None:
        self._object(handles, Netns, {"name": name, "state": "absent"})
        handles.forget(name)

    # -- purge -------------------------------------------------------------------------------------------------

    def purge(self, handles, owned: dict, wanted: list[dict]) -> dict:
        want_nets = {n["name"]: n for n in wanted}
        want_eps = {(n["name"], e["name"]): e for n in wanted for e in n["endpoints"]}
        removed = {"networks": [], "endpoints": []}
        for ep in sorted(owned["endpoints"].values(), key=lambda e: e["name"]):
            keep = want_eps.get((ep["network"], ep["name"]))
            if keep and keep["netns"] == ep["netns"] and keep["veth"] == ep["veth"]:
                continue
            if ep["network"] in want_nets and nl.netns_exists(ep["overlay_netns"]):
                self._object(
                    handles,
                    Veth,
                    {
                        "name": ep["veth"],
                        "netns": ep["overlay_netns"],
                        "peer_name": "eth0",
                        "peer_netns": ep["netns"],
                        "state": "absent",
                    },
                )
            if ep["netns"] and (not keep or keep["netns"] != ep["netns"]):
                self._remove_netns(handles, ep["netns"])
            removed["endpoints"].append(ep["name"])
        for net in sorted(owned["networks"].values(), key=lambda n: n["name"]):
            target = want_nets.get(net["name"])
            if target and target["netns"] == net["netns"]:
                continue
            self._remove_netns(handles, net["netns"])
            removed["networks"].append(net["name"])
        return removed

    # -- one network -------------------------------------------------------------------------------------------

    def network(self, handles, net: dict, under: dict) -> dict:
        netns, vtep = net["netns"], self.p["vtep"]
        out = {"name": net["name"], "netns": netns}
        if self.check_mode and not nl.netns_exists(netns):
            # Nothing to read yet: the whole network is created.  Predict it without touching the kernel.
            self.changed = True
            self.commands.append(f"ip netns add {netns}")
            self.commands.append(
                f"# create {net['bridge']} and {net['vxlan']} (vni {net['vni']}) in {netns}, "
                f"{len(net['endpoints'])} endpoint(s), {len(net['neigh'])} neigh and {len(net['fdb'])} fdb entries"
            )
            out.update(
                fdb={"before": [], "after": sorted(net["fdb"], key=_table.FDB.sort_key)},
                neigh={"before": [], "after": sorted(net["neigh"], key=_table.NEIGH.sort_key)},
            )
            self.views[net["name"]] = _host_diff.predicted_views(net, vtep, under["vtep_dev"], out)
            return out
        objects = {"netns": self._object(handles, Netns, {"name": netns, "state": "present"}), "endpoints": {}}
        objects["bridge"] = self._object(
            handles, Bridge, {"name": net["bridge"], "netns": netns, "mtu": net["mtu"], "state": "present"}
        )
        vx = objects["vxlan"] = self._object(
            handles,
            Vxlan,
            {
                "name": net["vxlan"],
                "netns": netns,
                "vni": net["vni"],
                "port": net["port"],
                "local": vtep,
                "dev": under["vtep_dev"],
                "learning": False,
                "proxy": True,
                "master": net["bridge"],
                "mtu": net["mtu"],
                "state": "present",
                "alias": _discover.network_alias(net["name"]),
            },
        )
        if vx.get("recreated"):
            out["recreated"] = vx["recreate_reason"]
        for ep in net["endpoints"]:
            objects["endpoints"][ep["name"]] = self._object(
                handles,
                Veth,
                {
                    "name": ep["veth"],
                    "netns": netns,
                    "master": net["bridge"],
                    "peer_name": ep.get("ifname", "eth0"),
                    "peer_netns": ep["netns"],
                    "address": ep["address"],
                    "mac": ep["mac"],
                    "mtu": ep["mtu"],
                    "state": "present",
                    "alias": _discover.endpoint_alias(ep["name"], ep["netns"]),
                },
            )
        out.update(self.tables(handles, net))
        self.views[net["name"]] = _host_diff.network_views(net, objects, out)
        return out

    def tables(self, handles, net: dict) -> dict:
        """Both tables of one network, ``overridden``; entries pointing at preserved VTEPs are kept as they are."""
        ns = handles(net["netns"])
        index = ns.link_index(net["vxlan"])
        if index is None:  # check mode after a predicted recreate: the device does not exist yet
            index = -1
        preserve = set(self.p["preserve_vteps"] or [])
        out = {}
        # (key, member) pairs: (mac, dst) in the FDB, (ip, mac) in the neighbour table
        fdb_current = _table.read_pairs(ns, _table.FDB, index) if index > 0 else []
        kept_macs = {mac for mac, dst in fdb_current if dst in preserve}
        for spec, wanted_raw in ((_table.FDB, net["fdb"]), (_table.NEIGH, net["neigh"])):
            wanted = _table.normalize_entries(
                spec, wanted_raw, state="overridden", local=self.p["vtep"] if spec is _table.FDB else None
            )
            current = fdb_current if spec is _table.FDB else (_table.read_pairs(ns, spec, index) if index > 0 else [])
            keys = {e[spec.key_field] for e in wanted}
            for key, member in current:
                keep = member in preserve if spec is _table.FDB else member in kept_macs
                if keep and key not in keys:
                    wanted.append(spec.entry(key, member))
            result = _table.plan_pairs(spec, "overridden", wanted, current, dev=net["vxlan"], netns=net["netns"])
            if result["ops"] and not self.check_mode:
                _table.apply(ns, spec, index, result["ops"])
            self._record(result)
            out[spec.name] = {"before": result["before"], "after": result["after"]}
        return out

    # -- the VTEP allowlist --------------------------------------------------------------------------------------

    def wanted_firewall(self, wanted: list[dict]) -> dict | None:
        """The allowlist table this host should have (None: none), validated before anything changes."""
        p = self.p
        if not p.get("firewall") or not wanted:
            return None
        allow = p.get("allow")
        if allow is None:  # default: every remote VTEP of the host's networks, and the preserved ones
            allow = [vtep for net in wanted for vtep in net.get("peers", [])] + list(p["preserve_vteps"] or [])
        ports = p.get("ports") or sorted({int(net.get("port") or 4789) for net in wanted})
        return _firewall.wanted(p["vtep"], allow, ports)

    def firewall(self, table: dict | None) -> dict:
        if self.nft is None:
            return {}
        result = _firewall.converge(self.nft, table, self.check_mode)
        self._record(result)
        return {"before": result["before"], "after": result["after"]}

    # -- the whole host ------------------------------------------------------------------------------------------

    def run(self) -> dict:
        p = self.p
        _host_preflight.check_input(p)
        wanted = p["networks"] if p["state"] == "present" else []
        table = self.wanted_firewall(wanted)
        firewall = {}
        with Handles() as handles:
            under = _discover.underlay(handles(None), p["vtep"])
            if wanted and not under["vtep_is_local"]:
                raise v.InputError(
                    f"vtep: {p['vtep']} is not an address of this host; set overlay_vtep to one of "
                    "its underlay addresses"
                )
            owned = _discover.owned(handles)
            _host_preflight.check_foreign_vxlan(handles, wanted, p["vtep"])
            if table is not None:  # filter first, then open the vxlan sockets
                firewall = self.firewall(table)
            removed = self.purge(handles, owned, wanted)
            results = [self.network(handles, net, under) for net in wanted]
            if table is None:  # the sockets are closed: drop the filter
                firewall = self.firewall(None)
            facts = None
            if not self.check_mode:
                facts = {"kernel": _discover.kernel_info(), "pyroute2": True, "nft": _discover.nft_binary()}
                if self.changed:
                    facts.update(_discover.underlay(handles(None), p["vtep"]))
                    facts.update(_discover.owned(handles))
                else:  # nothing was written: what was read before is still the host's state
                    facts.update(copy.deepcopy(under))
                    facts.update(copy.deepcopy(owned))
        return {
            "changed": self.changed,
            "commands": self.commands,
            "removed": removed,
            "networks": results,
            "firewall": firewall,
            "owned_before": owned,
            "owned_after": facts,
            "views": self.views,
            "owned_predicted": _host_diff.predicted_owned(wanted),
        }


def run_module(module) -> None:
    nft = _firewall.Nft(module.run_command, _discover.nft_binary())
    try:
        with _lock.host_lock(module.params["lock_timeout"]):
            result = HostConverger(module.params, module.check_mode, nft).run()
    except (v.InputError, _lock.LockTimeout, _firewall.FirewallError) as exc:
        module.fail_json(msg=str(exc))
    except (nl.NetlinkOpError, _table.TableApplyError) as exc:
        module.fail_json(msg=str(exc))
    except ObjectError as exc:
        module.fail_json(msg=str(exc), commands=exc.commands, commands_done=exc.done)
    owned_after = result.pop("owned_after")
    owned_before = result.pop("owned_before")
    views = result.pop("views")
    owned_predicted = result.pop("owned_predicted")
    if owned_after is not None:
        result["ansible_facts"] = {"netfleet_overlay": owned_after}
    if module._diff:
        after = _host_diff.owned_names(owned_after) if owned_after is not None else owned_predicted
        result["diff"] = {
            "before": _summary(_host_diff.owned_names(owned_before), views, result, "before"),
            "after": _summary(after, views, result, "after"),
        }
    module.exit_json(**result)


def _summary(owned: dict, views: dict, result: dict, side: str) -> dict:
    """One side of the diff: what the collection owns, each network's objects and table lines, the allowlist."""
    return {
        "owned": owned,
        "networks": {name: view[side] for name, view in views.items()},
        "firewall": result.get("firewall", {}).get(side, {}),
    }
