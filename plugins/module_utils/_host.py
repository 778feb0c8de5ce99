# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: converge one host's whole overlay state in one module run.  May change without notice.
"""The composite apply behind ``netfleet.overlay.overlay_host``.

It drives the same object planners (:mod:`._links`) and table reconciler (:mod:`._table`) as the single-object
modules, in dependency order: purge what is no longer wanted (endpoints, then networks), then per network the
overlay netns, br0, vxlan0, the endpoints, and last the ARP and FDB tables (``overridden``).

The VTEP allowlist (:mod:`._firewall`) is put in place before the first network is created, and removed after the
last one is gone.  The whole converge holds the host lock (:mod:`._lock`), so concurrent runs on one host queue.

What the collection owns is its ownership record (:mod:`._records`): a namespace that the plan wants but the record
does not name is someone else's, and the run fails before any change.  The record is written before anything is
created (so a run that dies half-way still knows what it made) and after the run, also a failed one.
"""

from __future__ import annotations

import copy
import os

from ansible_collections.netfleet.overlay.plugins.module_utils import (
    _discover,
    _dns,
    _egress,
    _firewall,
    _host_diff,
    _host_preflight,
    _lock,
    _records,
    _statedir,
    _table,
)
from ansible_collections.netfleet.overlay.plugins.module_utils import _validate as v
from ansible_collections.netfleet.overlay.plugins.module_utils._links import (
    Bridge,
    Netns,
    Veth,
    Vxlan,
    foreseen_address,
)
from ansible_collections.netfleet.overlay.plugins.module_utils._model import (
    DEFAULT_PORT,
    WIREGUARD_NETNS,
    ZERO_MAC,
)
from ansible_collections.netfleet.overlay.plugins.module_utils._module import ModuleError
from ansible_collections.netfleet.overlay.plugins.module_utils._objects import Handles, ObjectError
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl import namespace as nl


def _wireguard_engine():
    """The WireGuard engine (:mod:`._wireguard`), imported when a run needs it: a host without encrypted networks
    never loads it."""
    from ansible_collections.netfleet.overlay.plugins.module_utils import _wireguard

    return _wireguard


class TunnelError(ModuleError):
    """The WireGuard tunnel could not be converged (the engine's message)."""


class HostApplyError(ModuleError):
    """The converge failed after it began: what it applied (``commands_done``), whether that changed the host, what
    it did not get to (``not_done``), the summary line, the run's warnings and, for refused table writes, one
    message per entry (``errors``)."""


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _names(names: list[str], limit: int = 5) -> str:
    return ", ".join(names[:limit]) + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


class HostConverger:
    def __init__(
        self,
        params: dict,
        check_mode: bool,
        nft: _firewall.Nft | None = None,
        state_dir: str | None = None,
        dns: _dns.Servers | None = None,
        *,
        run_command=None,
        no_log_values: set | None = None,
    ):
        self.p = params
        self.run_command = run_command  # AnsibleModule's: what the WireGuard engine runs wg and wireguard-go with
        self.no_log_values = no_log_values  # AnsibleModule's: every private key read is masked, should it show
        self.tunnel = None  # the WireGuard engine's Tunnel, made when the run has or had a tunnel
        self.tunnel_summary = ""
        self.tunnel_removed = False  # the run removed (check mode: would remove) the tunnel
        self.check_mode = check_mode
        self.nft = nft
        self.state_dir = state_dir or _statedir.STATE_DIR
        self.commands: list[str] = []
        self.changed = False
        self.networks: dict = {}
        self.views: dict = {}  # network -> {'before', 'after'} for diff mode
        self.warnings: list[str] = []
        self.record: dict = _records.empty()
        self.saved: str | None = None  # the record's text on the host
        self.owned: dict = {"networks": {}, "endpoints": {}}
        self.to_remove: dict = {"networks": [], "endpoints": []}
        self.progress = {"endpoints": set(), "networks": set(), "converged": set()}
        self.touched = {"networks": set(), "endpoints": set()}  # existing ones whose objects changed
        self.tally = {"fdb": [0, 0], "neigh": [0, 0]}  # [added, deleted]
        self.firewall_changed = False
        self.egress: _egress.Egress | None = None  # made by run(), with the record
        self.dns = dns or _dns.Servers(state_dir=self.state_dir)  # the dns networks' servers and resolv.conf
        self.dns.warnings = self.warnings

    # -- helpers -----------------------------------------------------------------------------------------------

    def _object(self, handles, cls, params) -> dict:
        try:
            result = cls(params, handles, self.check_mode).execute()
        except ObjectError as exc:
            self.changed |= bool(exc.done)
            self.commands.extend(exc.done)
            raise
        self._record(result)
        return result

    def _record(self, result: dict) -> None:
        self.changed |= bool(result["changed"])
        self.commands.extend(result["commands"])

    def _remove_netns(self, handles, name: str) -> None:
        self._object(handles, Netns, {"name": name, "state": "absent"})
        handles.forget(name)

    # -- the ownership record ------------------------------------------------------------------------------------

    def _intend(self, wanted: list[dict]) -> None:
        """Add what this run makes to the record: every wanted network and endpoint, each network's peers, and the
        WireGuard tunnel."""
        record = self.record
        if self.p.get("wireguard") is not None:
            record["wireguard"] = _records.wireguard_entry()
        for net in wanted:
            record["networks"][net["name"]] = {
                "netns": net["netns"],
                "vni": net["vni"],
                "bridge": net["bridge"],
                "vxlan": net["vxlan"],
            }
            for ep in net["endpoints"]:
                # an attached netns is the user's: never recorded as made, so no purge ever deletes it
                created = not ep["attached"] and all(
                    e["netns_created"] for e in record["endpoints"].values() if e["netns"] == ep["netns"]
                )
                record["endpoints"][ep["name"]] = {
                    "network": net["name"],
                    "netns": ep["netns"],
                    "veth": ep["veth"],
                    "ifname": ep["ifname"],
                    "netns_created": created,
                }
            record["peers"][net["name"]] = self._peers(net, record["peers"].get(net["name"]) or {})

    def _peers(self, net: dict, before: dict) -> dict:
        """The remote VTEPs the network's FDB holds entries for, with the host each belongs to (null: unknown)."""
        # normalised (check_input), as the record reads them back: an unchanged record is never written again
        vteps = {entry["dst"] for entry in net["fdb"]} | set(net["peer_hosts"])
        vteps.update(vtep for vtep in self._preserved(net) if vtep in before)
        vteps.discard(self.p["vtep"])
        if net.get("encrypted"):
            vteps.discard(self.p["wireguard"]["address"])
        return {vtep: net["peer_hosts"].get(vtep, before.get(vtep)) for vtep in sorted(vteps)}

    def _preserved(self, net: dict) -> set:
        """The FDB destinations of ``net`` that belong to hosts of unknown state (``preserve_vteps``): the VTEPs
        themselves, or for an encrypted network the tunnel addresses of the tunnel's peers at those VTEPs."""
        preserve = set(self.p["preserve_vteps"] or ())
        if not net.get("encrypted"):
            return preserve
        peers = (self.p.get("wireguard") or {}).get("peers") or []
        return {peer["address"] for peer in peers if _host_preflight.endpoint_ip(peer["endpoint"]) in preserve}

    def _save(self, prune: bool = True) -> None:
        """Write the record when it differs from the host's copy; never in check mode.

        ``prune`` drops the entries whose netns does not exist (after the run); without it, the record also names
        what is about to be created.
        """
        if self.check_mode:
            return
        record = self.record
        if prune:
            for name, rec in list(record["networks"].items()):
                if not nl.netns_exists(rec["netns"]):
                    del record["networks"][name]
            for name, rec in list(record["endpoints"].items()):
                if not nl.netns_exists(rec["netns"]):
                    del record["endpoints"][name]
            record["peers"] = {name: peers for name, peers in record["peers"].items() if name in record["networks"]}
            if "wireguard" in record and not nl.netns_exists(WIREGUARD_NETNS) and self.p.get("wireguard") is None:
                del record["wireguard"]
        text = _records.encode(record)
        if text != self.saved:
            _records.save(record, self.state_dir)
            self.saved = text

    # -- purge -------------------------------------------------------------------------------------------------

    def plan_purge(self, owned: dict, wanted: list[dict]) -> dict:
        """The owned endpoints and networks that this run removes (an endpoint that moves is removed, then made).

        The endpoints named in ``keep_endpoints`` stay as they are, and so does the network that holds them: the
        first pass of a run with moves, on a host that an endpoint also leaves (make-before-break).
        """
        want_nets = {n["name"]: n for n in wanted}
        want_eps = {(n["name"], e["name"]): e for n in wanted for e in n["endpoints"]}
        held = set(self.p.get("keep_endpoints") or ())
        endpoints = []
        for ep in sorted(owned["endpoints"].values(), key=lambda e: e["name"]):
            keep = want_eps.get((ep["network"], ep["name"]))
            if ep["name"] in held and not keep:
                continue
            if not (keep and keep["netns"] == ep["netns"] and keep["veth"] == ep["veth"]):
                endpoints.append(ep["name"])
        held_nets = {ep["network"] for ep in owned["endpoints"].values() if ep["name"] in held}
        networks = [
            net["name"]
            for net in sorted(owned["networks"].values(), key=lambda n: n["name"])
            if net["name"] not in held_nets
            and not (want_nets.get(net["name"]) and want_nets[net["name"]]["netns"] == net["netns"])
        ]
        return {"networks": networks, "endpoints": endpoints}

    def purge(self, handles, owned: dict, wanted: list[dict]) -> dict:
        want_nets = {n["name"]: n for n in wanted}
        want_eps = {e["name"]: e for n in wanted for e in n["endpoints"]}
        for name in self.to_remove["endpoints"]:
            ep = owned["endpoints"][name]
            keep = want_eps.get(name)
            # a removed network's netns takes the veth with it, but in a netns the user attached the veth goes
            # first, by name: what still holds the overlay netns (a process in it) cannot keep it alive there
            gone_with_network = ep["network"] not in want_nets and ep["netns_created"]
            if not gone_with_network and ep["overlay_netns"] and nl.netns_exists(ep["overlay_netns"]):
                self._object(
                    handles,
                    Veth,
                    {
                        "name": ep["veth"],
                        "netns": ep["overlay_netns"],
                        "peer_name": ep["ifname"],
                        "peer_netns": ep["netns"],
                        "state": "absent",
                    },
                )
            if not keep or keep["netns"] != ep["netns"]:
                if ep["netns_created"]:  # never delete a namespace the collection did not make
                    self._remove_netns(handles, ep["netns"])
                self.record["endpoints"].pop(name, None)
            self.progress["endpoints"].add(name)
        for name in self.to_remove["networks"]:
            self._remove_netns(handles, owned["networks"][name]["netns"])
            self.record["networks"].pop(name, None)
            self.record["peers"].pop(name, None)
            self.progress["networks"].add(name)
        return copy.deepcopy(self.to_remove)

    # -- one network -------------------------------------------------------------------------------------------

    def network(self, handles, net: dict, under: dict) -> dict:
        """Converge one network's objects and tables; in check mode a netns that does not exist yet reads as empty
        (:class:`~._objects.Unmade`), so the prediction is what a real run does."""
        netns, vtep = net["netns"], self.p["vtep"]
        out = {"name": net["name"], "netns": netns}
        objects = {"netns": self._object(handles, Netns, {"name": netns, "state": "present"}), "endpoints": {}}
        gateway = net.get("gateway")  # on br0: its address ("" removes a former one) and anycast MAC
        objects["bridge"] = self._object(
            handles,
            Bridge,
            {
                "name": net["bridge"],
                "netns": netns,
                "mtu": net["mtu"],
                "address": f"{gateway['address']}/{gateway['prefixlen']}" if gateway else "",
                "mac": gateway["mac"] if gateway else None,
                "state": "present",
            },
        )
        encrypted = net.get("encrypted")  # made in ovl-wg on the tunnel address: its socket is inside the tunnel
        vx = objects["vxlan"] = self._object(
            handles,
            Vxlan,
            {
                "name": net["vxlan"],
                "netns": netns,
                "underlay_netns": WIREGUARD_NETNS if encrypted else None,
                "vni": net["vni"],
                "port": net["port"],
                "local": self.p["wireguard"]["address"] if encrypted else vtep,
                "dev": None if encrypted else under["vtep_dev"],
                "learning": False,
                "proxy": net["proxy"],  # a change recreates the device; its tables are refilled below
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
                    "peer_name": ep["ifname"],
                    "peer_netns": ep["netns"],
                    "peer_lo": not ep["attached"],  # an attached netns's lo is the user's
                    "address": ep["address"],
                    "mac": ep["mac"],
                    "mtu": ep["mtu"],
                    "state": "present",
                    "alias": _discover.endpoint_alias(ep["name"], ep["netns"]),
                },
            )
        if net["name"] in self.owned["networks"] and any(objects[k]["changed"] for k in ("netns", "bridge", "vxlan")):
            self.touched["networks"].add(net["name"])
        for name, result in objects["endpoints"].items():
            if name in self.owned["endpoints"] and result["changed"]:
                self.touched["endpoints"].add(name)
        out.update(self.tables(handles, net))
        self.views[net["name"]] = _host_diff.network_views(net, objects, out)
        return out

    def tables(self, handles, net: dict) -> dict:
        """Both tables of one network, ``overridden``; entries pointing at preserved VTEPs are kept as they are."""
        ns = handles(net["netns"])
        index = ns.link_index(net["vxlan"])
        if index is None:  # check mode: the device does not exist yet (a new netns, or a predicted recreate)
            index = -1
        preserve = self._preserved(net)
        out = {}
        # (key, member) pairs: (mac, dst) in the FDB, (ip, mac) in the neighbour table
        fdb_current = _table.read(ns, _table.FDB, index) if index > 0 else []
        kept_macs = {mac for mac, dst in fdb_current if dst in preserve}
        for spec in (_table.FDB, _table.NEIGH):
            wanted = list(net[spec.name])  # normalised by check_input
            current = fdb_current if spec is _table.FDB else (_table.read(ns, spec, index) if index > 0 else [])
            keys = {e[spec.key_field] for e in wanted}
            for key, member in current:
                # a preserved VTEP keeps its unicast entries, never a flood entry: the flood list is the plan's
                keep = member in preserve and key != ZERO_MAC if spec is _table.FDB else member in kept_macs
                if keep and key not in keys:
                    wanted.append(spec.entry(key, member))
            out[spec.name] = _table.plan(spec, "overridden", wanted, current, dev=net["vxlan"], netns=net["netns"])
        if not self.check_mode:
            self._apply_tables(ns, index, out["fdb"]["ops"], out["neigh"]["ops"])
        for spec in (_table.FDB, _table.NEIGH):
            result = out[spec.name]
            upserts = sum(op["action"] == "upsert" for op in result["ops"])
            self.tally[spec.name][0] += upserts
            self.tally[spec.name][1] += len(result["ops"]) - upserts
            self._record(result)
            out[spec.name] = {"before": result["before"], "after": result["after"]}
        return out

    def _apply_tables(self, ns, index: int, fdb_ops: list[dict], neigh_ops: list[dict]) -> None:
        """Write one network's planned table changes make-before-break: the FDB entries first (a new MAC's
        destination exists before an ARP entry names it; a moved MAC's is replaced in place), then the ARP entries
        (an address reused by another MAC switches with one replace), and last the FDB entries that go (an old MAC
        is forgotten only once no ARP entry names it)."""
        steps = (
            (_table.FDB, [op for op in fdb_ops if op["action"] != "delete"]),
            (_table.NEIGH, neigh_ops),
            (_table.FDB, [op for op in fdb_ops if op["action"] == "delete"]),
        )
        done: list[str] = []
        for spec, ops in steps:
            if not ops:
                continue
            try:
                _table.apply(ns, spec, index, ops)
            except _table.TableApplyError as exc:
                # every entry of the step was attempted: the ones that failed are named in ``errors``
                self.changed |= bool(done) or len(exc.errors) < len(ops)
                self.commands.extend(done + [op["command"] for op in ops])
                raise
            done += [op["command"] for op in ops]

    # -- the VTEP allowlist --------------------------------------------------------------------------------------

    def wanted_firewall(self, wanted: list[dict]) -> dict | None:
        """The allowlist table this host should have (None: none), validated before anything changes."""
        p = self.p
        if not p.get("firewall") or not wanted:
            return None
        plain = [net for net in wanted if not net.get("encrypted")]  # the only VXLAN sockets on the underlay
        allow = p.get("allow")
        if allow is None:  # default: every remote VTEP of the host's networks, and the preserved ones
            allow = [vtep for net in plain for vtep in net.get("peers", [])] + list(p["preserve_vteps"] or [])
        ports = p.get("ports") or sorted({int(net.get("port") or DEFAULT_PORT) for net in plain})
        wg = p.get("wireguard")
        if wg is None:
            return _firewall.wanted(p["vtep"], allow, ports)
        wg_allow = p.get("wireguard_allow")
        if wg_allow is None:  # default: the VTEPs of the tunnel's peers, from their endpoints
            wg_allow = [_host_preflight.endpoint_ip(peer["endpoint"]) for peer in wg["peers"]]
        return _firewall.wanted(p["vtep"], allow if plain or p.get("ports") else [], ports, wg_allow, wg["port"])

    # -- the WireGuard tunnel ------------------------------------------------------------------------------------

    def wireguard(self, handles, want: dict | None) -> None:
        """Converge the tunnel to ``want`` (None: remove it, its namespace, daemon and keys) through the WireGuard
        engine. In check mode a namespace or address that the run would make is noted, so that the encrypted
        networks' vxlan devices are planned against it."""
        if self.tunnel is None:
            engine = _wireguard_engine()
            self.tunnel = engine.Tunnel(
                self.run_command,
                self.check_mode,
                self.warnings,
                state_dir=self.state_dir,
                no_log_values=self.no_log_values,
            )
        try:
            result = self.tunnel.converge(handles, want)
        except (ModuleError, _statedir.StateDirError) as exc:
            done = list(getattr(exc, "details", {}).get("commands_done") or [])
            self.changed |= bool(done)
            self.commands.extend(done)
            msg = str(exc)
            raise TunnelError(msg if msg.startswith("wireguard: ") else f"wireguard: {msg}") from exc
        self._record(result)
        self.tunnel_removed = want is None and bool(result.get("changed"))
        if result.get("changed") and result.get("summary"):
            self.tunnel_summary = result["summary"]
        if self.check_mode and want is not None:
            if not nl.netns_exists(WIREGUARD_NETNS):
                handles.foresee(WIREGUARD_NETNS)
            handles.foresee(WIREGUARD_NETNS, foreseen_address(want["address"]))

    def _had_tunnel(self, record: dict) -> bool:
        """Whether the host may hold something of a tunnel to remove: the record names it, or keys are left (and
        no ``ovl-wg`` of someone else's is there, which the teardown would delete)."""
        if _discover.wireguard_owned(record):
            return True
        return os.path.lexists(os.path.join(self.state_dir, "wireguard")) and not nl.netns_exists(WIREGUARD_NETNS)

    def firewall(self, table: dict | None) -> dict:
        if self.nft is None:
            return {}
        result = _firewall.converge(self.nft, table, self.check_mode)
        self.firewall_changed |= bool(result["changed"])
        self._record(result)
        return {"before": result["before"], "after": result["after"]}

    # -- the whole host ------------------------------------------------------------------------------------------

    def run(self) -> dict:
        p = self.p
        _host_preflight.check_input(p)
        wanted = p["networks"] if p["state"] == "present" else []
        table = self.wanted_firewall(wanted)
        firewall = {}
        loaded = _records.load(self.state_dir)
        if loaded is not None:
            self.saved = _records.encode(loaded)
        with Handles() as handles:
            under = _discover.underlay(handles(None), p["vtep"])
            if wanted and not under["vtep_is_local"]:
                raise v.InputError(
                    f"vtep: {p['vtep']} is not an address of this host; set overlay_vtep to one of "
                    "its underlay addresses"
                )
            record = loaded if loaded is not None else _discover.adopt_legacy(handles, self.warnings)
            owned = self.owned = _discover.owned(handles, record)
            _host_preflight.check_netns_owned(wanted, record)
            _host_preflight.check_attached(handles, wanted, record)
            _host_preflight.check_foreign_vxlan(handles, wanted, p["vtep"], record)
            _host_preflight.check_wireguard_netns(p, record)
            want_wg = p.get("wireguard") if p["state"] == "present" else None
            self.record = copy.deepcopy(record)
            # egress: checked before any change; its firewall part stays until the uplink forwarding is restored
            self.egress = _egress.Egress(self.check_mode, self.record, self.warnings, self._record)
            self.egress.check(wanted, under)
            allowlist = table
            table = _firewall.merge(allowlist, self.egress.table_part(handles, wanted, under, keep_owned=True))
            final = _firewall.merge(allowlist, self.egress.table_part(handles, wanted, under, keep_owned=False))
            self.to_remove = self.plan_purge(owned, wanted)
            try:
                if table is not None:  # filter first, then open the vxlan sockets
                    firewall = self.firewall(table)
                self._record(self.dns.prune(wanted, self.check_mode))  # before its netns goes
                removed = self.purge(handles, owned, wanted)
                self._intend(wanted)
                self._save(prune=False)  # before anything is created: a run that dies half-way knows what it made
                if want_wg is not None:  # the tunnel before the encrypted networks' vxlan devices made in it
                    self.wireguard(handles, want_wg)
                results = []
                for net in wanted:
                    results.append(self.network(handles, net, under))
                    self.egress.network(handles, net, under)  # after the endpoints it routes
                    if net["dns"]:  # after its tables: the gateway it listens on is on br0
                        self._record(self.dns.converge(net, self.check_mode))
                    self.progress["converged"].add(net["name"])
                self._record(self.dns.resolv(wanted, self.check_mode))
                self.egress.finish(handles, wanted)
                if want_wg is None and self._had_tunnel(record):  # after the last encrypted network left ovl-wg
                    self.wireguard(handles, None)
                if table is None or final != table:  # the sockets are closed, egress forwarding is off
                    firewall = {**self.firewall(final), **({"before": firewall["before"]} if firewall else {})}
                self._save()
            except (
                v.InputError,
                nl.NetlinkOpError,
                ObjectError,
                _table.TableApplyError,
                _firewall.FirewallError,
                _records.RecordError,
                _dns.DnsError,
                TunnelError,
            ) as exc:
                raise self._failed(exc, wanted) from exc
            if loaded is None and (record["networks"] or record["endpoints"]) and not self.check_mode:
                self.warnings.append(
                    f"took over {_plural(len(record['networks']), 'network')} and"
                    f" {_plural(len(record['endpoints']), 'endpoint')} that netfleet.overlay 0.1.0 made (read from"
                    f" their link aliases) and recorded them in {_records.path(self.state_dir)}"
                )
            facts = None
            if not self.check_mode:
                facts = {"kernel": _discover.kernel_info(), "pyroute2": True, "nft": _discover.nft_binary()}
                if self.changed:
                    facts.update(_discover.underlay(handles(None), p["vtep"]))
                    facts.update(_discover.owned(handles, self.record))
                else:  # nothing was written: what was read before is still the host's state
                    facts.update(copy.deepcopy(under))
                    facts.update(copy.deepcopy(owned))
                facts["peers"] = copy.deepcopy(self.record["peers"])
                facts["netns"] = _discover.netns_names()
                # as overlay_facts reports it (these facts replace that report), also on a host without a tunnel
                if self.tunnel is not None:
                    facts["wireguard"] = self.tunnel.facts()
                else:
                    facts["wireguard"] = _wireguard_engine().facts(self.run_command, self.state_dir, self.no_log_values)
        return {
            "changed": self.changed,
            "commands": self.commands,
            "removed": removed,
            "networks": results,
            "firewall": firewall,
            "summary": self.summary(wanted) if self.changed else "",
            "warnings": self.warnings,
            "owned_before": owned,
            "owned_after": facts,
            "views": self.views,
            "owned_predicted": _host_diff.predicted_owned(wanted),
            "tunnel_removed": self.tunnel_removed,
        }

    def _failed(self, exc: Exception, wanted: list[dict]) -> HostApplyError:
        """What a run that failed part-way reports; the record is written with what was done first."""
        done = list(self.commands)
        not_done = {
            "remove_endpoints": [n for n in self.to_remove["endpoints"] if n not in self.progress["endpoints"]],
            "remove_networks": [n for n in self.to_remove["networks"] if n not in self.progress["networks"]],
            "networks": [net["name"] for net in wanted if net["name"] not in self.progress["converged"]],
        }
        msg = str(exc)
        try:
            self._save()
        except _records.RecordError as record_exc:
            msg += f". Also, {record_exc}"
        left = [
            f"removing {label} {_names(not_done[key])}"
            for key, label in (("remove_endpoints", "endpoint(s)"), ("remove_networks", "network(s)"))
            if not_done[key]
        ]
        if not_done["networks"]:
            left.append(f"converging network(s) {_names(not_done['networks'])}")
        if left:
            msg += f". Not done: {'; '.join(left)}"
        if done:
            msg += f". {_plural(len(done), 'command')} applied before the failure: see commands_done"
        else:
            msg += ". Nothing was changed"
        details = {"changed": self.changed, "commands_done": done, "not_done": not_done, "warnings": self.warnings}
        details["summary"] = self.summary(wanted) if self.changed else ""
        if isinstance(exc, _table.TableApplyError):
            details["errors"] = exc.errors
        return HostApplyError(msg, **details)

    def summary(self, wanted: list[dict]) -> str:
        """One line for people: ``+1 endpoint (web3), -1 network (backend), fdb +3 -2, arp +3 -2``."""
        owned = self.owned
        want_eps = [ep["name"] for net in wanted for ep in net["endpoints"]]
        removed_eps = [n for n in self.to_remove["endpoints"] if n in self.progress["endpoints"] or self.check_mode]
        removed_nets = [n for n in self.to_remove["networks"] if n in self.progress["networks"] or self.check_mode]
        groups = [
            ("+", "network", [n["name"] for n in wanted if n["name"] not in owned["networks"]]),
            ("+", "endpoint", [n for n in want_eps if n not in owned["endpoints"]]),
            ("~", "network", sorted(self.touched["networks"])),
            ("~", "endpoint", sorted(self.touched["endpoints"] | (set(removed_eps) & set(want_eps)))),
            ("-", "endpoint", [n for n in removed_eps if n not in want_eps]),
            ("-", "network", removed_nets),
        ]
        parts = [f"{sign}{_plural(len(names), noun)} ({_names(names)})" for sign, noun, names in groups if names]
        for spec, label in (("fdb", "fdb"), ("neigh", "arp")):
            added, deleted = self.tally[spec]
            if added or deleted:
                parts.append(f"{label} +{added} -{deleted}")
        if self.firewall_changed:
            parts.append("allowlist updated")
        if self.egress and self.egress.summary():
            parts.append(self.egress.summary())
        if self.dns.summary():
            parts.append(self.dns.summary())
        if self.tunnel_summary:
            parts.append(self.tunnel_summary)
        return ", ".join(parts) or f"{_plural(len(self.commands), 'command')}"


def converge(module) -> dict:
    """What ``overlay_host`` does (its work for :func:`._module.run`): converge the host under the host lock, and
    report the facts after the run and, in diff mode, the diff."""
    nft = _firewall.Nft(module.run_command, _discover.nft_binary())
    with _lock.host_lock(module.params["lock_timeout"]):
        result = HostConverger(
            module.params,
            module.check_mode,
            nft,
            dns=_dns.Servers(module.run_command),
            run_command=module.run_command,
            no_log_values=module.no_log_values,
        ).run()
    owned_after = result.pop("owned_after")
    owned_before = result.pop("owned_before")
    views = result.pop("views")
    owned_predicted = result.pop("owned_predicted")
    tunnel_removed = result.pop("tunnel_removed")
    if owned_after is not None:
        result["ansible_facts"] = {"netfleet_overlay": owned_after}
    if module._diff:
        after = _host_diff.owned_names(owned_after) if owned_after is not None else owned_predicted
        result["diff"] = {
            "before": _summary(_host_diff.owned_names(owned_before), views, result, "before"),
            "after": _summary(after, views, result, "after"),
            "prepared": _host_diff.removed_text(result["removed"], owned_before, tunnel_removed),
        }
    return result


def _summary(owned: dict, views: dict, result: dict, side: str) -> dict:
    """One side of the diff: what the collection owns, each network's objects and table lines, the allowlist."""
    return {
        "owned": owned,
        "networks": {name: view[side] for name, view in views.items()},
        "firewall": result.get("firewall", {}).get(side, {}),
    }
