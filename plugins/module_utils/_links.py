# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: the kernel objects (netns, bridge, vxlan, veth) as planners.  May change without notice.
"""One class per kernel object.  Each reads its object as a canonical dict, predicts the result, and lists the
steps that get there.  The single-object modules and the composite ``host`` module both drive them through
:class:`~._objects.KernelObject`."""

from __future__ import annotations

from ansible_collections.netfleet.overlay.plugins.module_utils import _model
from ansible_collections.netfleet.overlay.plugins.module_utils import _validate as v
from ansible_collections.netfleet.overlay.plugins.module_utils._objects import KernelObject, Step, ip_cmd
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl import namespace as nl


def alias_steps(ns, netns, name, before, after) -> list[Step]:
    """Write the ownership alias (``ip link set NAME alias ...``) when it differs."""
    if not after.get("alias") or before.get("alias") == after["alias"]:
        return []
    return [
        Step(
            ip_cmd(netns, "link", "set", name, "alias", after["alias"]),
            lambda: ns.link_set(name, ns.link_index(name), ifalias=after["alias"]),
        )
    ]


IMMUTABLE = ("vni", "port", "local", "dev", "proxy")


def address_steps(handle, netns, name, current, wanted) -> list[Step]:
    """Make ``wanted`` (an ``ip/prefix``, or None: none) the only global address of link ``name``, from
    ``current`` (None, one ``ip/prefix`` or a list of them): remove the others, then add it.  ``handle()`` is the
    link's namespace, opened when a step runs."""
    have = [current] if isinstance(current, str) else list(current or [])
    steps = []
    for stale in have:
        if stale != wanted:
            ip_, plen = stale.split("/")
            steps.append(
                Step(
                    ip_cmd(netns, "addr", "del", stale, "dev", name),
                    lambda ip_=ip_, plen=plen: handle().addr_del(name, handle().link_index(name), ip_, int(plen)),
                )
            )
    if wanted and wanted not in have:
        ip_, plen = wanted.split("/")
        steps.append(
            Step(
                ip_cmd(netns, "addr", "add", wanted, "dev", name),
                lambda: handle().addr_add(name, handle().link_index(name), ip_, int(plen)),
            )
        )
    return steps


def port_steps(ns, netns, name, before, after) -> list[Step]:
    """MTU, bridge master and up in one ``ip link set``, then the ownership alias: what vxlan and veth share."""
    changes, words = {}, []
    if before["mtu"] != after["mtu"]:
        changes["mtu"] = after["mtu"]
        words += ["mtu", after["mtu"]]
    new_master = after["master"] if after["master"] and before["master"] != after["master"] else None
    if new_master:
        words += ["master", new_master]
    if not before["up"]:
        changes["state"] = "up"
        words.append("up")
    steps = []
    if words:

        def apply():
            extra = dict(changes)
            if new_master:
                extra["master"] = ns.link_index(new_master)
            ns.link_set(name, ns.link_index(name), **extra)

        steps.append(Step(ip_cmd(netns, "link", "set", name, *words), apply))
    return steps + alias_steps(ns, netns, name, before, after)


class Netns(KernelObject):
    def validate(self):
        v.netns_name(self.params["name"], "name")

    def read(self):
        name = self.params["name"]
        return {"name": name} if nl.netns_exists(name) else None

    def predict(self, before):
        return {"name": self.params["name"]} if self.params["state"] == "present" else None

    def foresee(self, before, after):
        if before is None and after is not None:
            self.handles.foresee(self.params["name"])

    def steps(self, before, after):
        name = self.params["name"]
        if after and not before:
            return [Step(ip_cmd(None, "netns", "add", name), lambda: nl.netns_create(name))]
        if before and not after:
            return [Step(ip_cmd(None, "netns", "del", name), lambda: nl.netns_remove(name))]
        return []


class Bridge(KernelObject):
    """A bridge (``br0`` of an overlay netns), with an optional address and MAC: a network's gateway.

    ``address`` (``ip/prefix``) is the bridge's only global address; ``""`` removes its addresses, None leaves them.
    ``mac`` (None: left as it is) is the bridge's MAC.  The state shows each of the two only when it is managed.
    """

    def validate(self):
        p = self._validate_link()
        if p["mtu"] is not None:
            v.mtu(p["mtu"])
        if p.get("address"):
            ipaddr, prefix = v.interface_address(p["address"], "address")
            p["address"] = f"{ipaddr}/{prefix}"
        if p.get("mac"):
            p["mac"] = v.mac(p["mac"], "mac", unicast=True)

    def read(self):
        p = self.params
        link = self._own_link("bridge", "a bridge", plain=None)
        if link is None:
            return None
        state = {"name": p["name"], "netns": p["netns"], "mtu": link["mtu"], "up": link["up"]}
        if p.get("address") is not None:
            addrs = [f"{a['address']}/{a['prefixlen']}" for a in self.handles(p["netns"]).addresses(link["index"])]
            state["address"] = addrs[0] if len(addrs) == 1 else (addrs or None)
        if p.get("mac"):
            state["mac"] = link["mac"]
        return state

    def predict(self, before):
        p = self.params
        if p["state"] == "absent":
            return None
        mtu = p["mtu"] or (before["mtu"] if before else _model.DEFAULT_MTU)
        after = {"name": p["name"], "netns": p["netns"], "mtu": mtu, "up": True}
        if p.get("address") is not None:
            after["address"] = p["address"] or None
        if p.get("mac"):
            after["mac"] = p["mac"]
        return after

    def steps(self, before, after):
        p = self.params
        name, netns = p["name"], p["netns"]
        ns = self.handles(netns)
        if after is None:
            if before is None:
                return []
            return [self._delete_step()]
        steps = []
        if before is None:
            steps.append(
                Step(ip_cmd(netns, "link", "add", name, "type", "bridge"), lambda: ns.link_add(name, "bridge"))
            )
            # An MTU given at creation does not count as set by the user: the kernel then lowers the bridge to its
            # smallest port's MTU when a port joins (br_mtu_auto_adjust). Set after creation, it stays.
            before = {"mtu": _model.DEFAULT_MTU if p["mtu"] else after["mtu"], "up": False}
        if after.get("mac") and before.get("mac") != after["mac"]:
            steps.append(
                Step(
                    ip_cmd(netns, "link", "set", name, "address", after["mac"]),
                    lambda: ns.link_set(name, ns.link_index(name), address=after["mac"]),
                )
            )
        if before["mtu"] != after["mtu"]:
            steps.append(
                Step(
                    ip_cmd(netns, "link", "set", name, "mtu", after["mtu"]),
                    lambda: ns.link_set(name, ns.link_index(name), mtu=after["mtu"]),
                )
            )
        if not before["up"]:
            steps.append(
                Step(
                    ip_cmd(netns, "link", "set", name, "up"), lambda: ns.link_set(name, ns.link_index(name), state="up")
                )
            )
        if "address" in after:
            steps.extend(address_steps(lambda: ns, netns, name, before.get("address"), after["address"]))
        return steps


def foreseen_address(address: str) -> str:
    """The key under which a check-mode run notes (``Handles.foresee(netns, key)``) that it would put ``address`` on
    a link of ``netns``: a vxlan device whose ``local`` it is then plans as it does against the real address."""
    return f"address {address}"


class Vxlan(KernelObject):
    """A vxlan device made in ``underlay_netns`` (None: the namespace the module runs in, the host's), whose
    addresses ``local`` must be one of, and moved into ``netns``: its UDP socket stays in ``underlay_netns``.

    An encrypted network's device is made in the WireGuard namespace (``ovl-wg``) with ``local`` = the host's tunnel
    address, so its socket is reachable only through the tunnel.  Where a device was made is not readable back, but
    its ``local`` is, and the two go together: a change of ``local`` recreates the device.
    """

    def validate(self):
        p = self._validate_link()
        p["underlay_netns"] = p.get("underlay_netns")
        if p["underlay_netns"] is not None:
            v.netns_name(p["underlay_netns"], "underlay_netns")
            if p["underlay_netns"] == p["netns"]:
                raise v.InputError(
                    f"underlay_netns: {p['underlay_netns']} is also netns; the device is made in underlay_netns and"
                    " moved into netns, so they must differ (omit netns to leave it where it is made)"
                )
        if p["state"] == "absent":
            return
        if p["vni"] is None:
            raise v.InputError("vni: required with state=present")
        p["vni"] = v.vni(p["vni"])
        p["port"] = v.port(p["port"])
        if p["local"] is not None:
            p["local"] = v.ip(p["local"], "local")
        for field in ("dev", "master"):
            if p[field] is not None:
                v.interface(p[field], field)
        if p["mtu"] is not None:
            p["mtu"] = v.mtu(p["mtu"])
        self.params = p

    def _underlay_checks(self):
        """Resolve dev and check that local is one of the host's addresses, before any change."""
        p = self.params
        where = p["underlay_netns"]
        if where is not None and not nl.netns_exists(where) and not self.handles.foreseen(where, None):
            raise v.InputError(f"underlay_netns: netns {where} does not exist; create it first")
        under = self.handles(where)
        self.dev_index = None
        if p["dev"]:
            self.dev_index = under.link_index(p["dev"])
            if self.dev_index is None:
                raise v.InputError(f"dev: underlay device {p['dev']} not found in {under.label}")
        if p["local"]:
            mine = {a["address"] for link in under.links() for a in under.addresses(link["index"])}
            if p["local"] not in mine and not self.handles.foreseen(where, foreseen_address(p["local"])):
                if where is None:
                    raise v.InputError(
                        f"local: {p['local']} is not an address of this host ({under.label}); use the host's VTEP"
                        " address"
                    )
                raise v.InputError(
                    f"local: {p['local']} is not an address of {under.label} (underlay_netns); use an address of"
                    f" netns {where}"
                )

    def read(self):
        p = self.params
        link = self._own_link("vxlan", "vxlan")
        if link is None:
            return None
        x = link["vxlan"]
        dev = None
        if x["dev_index"]:
            under = self.handles(p["underlay_netns"])
            dev = under._link_name(x["dev_index"]) or f"#{x['dev_index']}"
        return {
            "name": p["name"],
            "netns": p["netns"],
            "vni": x["vni"],
            "port": x["port"],
            "local": x["local"],
            "dev": dev,
            "learning": x["learning"],
            "proxy": x["proxy"],
            "master": link["master"],
            "mtu": link["mtu"],
            "up": link["up"],
            "alias": link["alias"],
        }

    def _default_mtu(self):
        p = self.params
        underlay = self.handles(p["underlay_netns"]).link(p["dev"])["mtu"] if p["dev"] else None
        return _model.vxlan_mtu(underlay, _model.family(p["local"]) if p["local"] else 4)

    def predict(self, before):
        p = self.params
        if p["state"] == "absent":
            return None
        self._underlay_checks()
        self._check_master()
        keep = before if before and not self._reason(before) else None
        mtu = p["mtu"] or (keep["mtu"] if keep else self._default_mtu())
        return {
            "name": p["name"],
            "netns": p["netns"],
            "vni": p["vni"],
            "port": p["port"],
            "local": p["local"],
            "dev": p["dev"],
            "learning": p["learning"],
            "proxy": p["proxy"],
            "master": p["master"] if p["master"] else (keep["master"] if keep else None),
            "mtu": mtu,
            "up": True,
            "alias": p.get("alias") or (keep["alias"] if keep else None),
        }

    def _reason(self, before):
        p = self.params
        return ", ".join(f"{k} {before[k]} -> {p[k]}" for k in IMMUTABLE if before[k] != p[k])

    def steps(self, before, after):
        p = self.params
        name, netns = p["name"], p["netns"]
        ns = self.handles(netns)
        self.result["recreated"] = False
        steps = []
        if after is None:
            if before is not None:
                steps.append(self._delete_step())
            return steps
        reason = self._reason(before) if before else ""
        if reason:
            self.result.update(recreated=True, recreate_reason=reason)
            steps.append(self._delete_step())
            before = None
        if before is None:
            steps.extend(self._create(after))
            before = dict(after, learning=p["learning"], master=None, up=False, alias=None)
        if before["learning"] != after["learning"]:
            word = "learning" if after["learning"] else "nolearning"
            steps.append(
                Step(
                    ip_cmd(netns, "link", "set", name, "type", "vxlan", word),
                    lambda: ns.vxlan_set(name, ns.link_index(name), learning=after["learning"]),
                )
            )
        steps.extend(port_steps(ns, netns, name, before, after))
        return steps

    def _create(self, want):
        """Create in the underlay namespace (``underlay_netns``), then move into netns under the final name."""
        p = self.params
        where = p["underlay_netns"]
        under = self.handles(where)
        tmp = _model.temp_vxlan_name(p["vni"]) if p["netns"] else p["name"]
        words = ["id", p["vni"], "dstport", p["port"]]
        if p["local"]:
            words += ["local", p["local"]]
        if p["dev"]:
            words += ["dev", p["dev"]]
        words += [
            "learning" if p["learning"] else "nolearning",
            "proxy" if p["proxy"] else "noproxy",
            "mtu",
            want["mtu"],
        ]

        def add():
            if p["netns"]:
                # a device left under its temporary name by an interrupted run is ours by that name
                for ns in (under, self.handles(p["netns"])):
                    stale = ns.link(tmp)
                    if stale and stale["kind"] == "vxlan":
                        ns.link_del(tmp, stale["index"])
            under.vxlan_add(
                tmp,
                vni=p["vni"],
                port=p["port"],
                local=p["local"],
                dev_index=self.dev_index,
                learning=p["learning"],
                proxy=p["proxy"],
                mtu=want["mtu"],
            )

        steps = [Step(ip_cmd(where, "link", "add", tmp, "type", "vxlan", *words), add)]
        if p["netns"]:
            steps.append(
                Step(
                    ip_cmd(where, "link", "set", tmp, "netns", p["netns"]),
                    lambda: under.link_set(tmp, under.link_index(tmp), net_ns_fd=p["netns"]),
                )
            )
            ns = self.handles(p["netns"])
            steps.append(
                Step(
                    ip_cmd(p["netns"], "link", "set", tmp, "name", p["name"]),
                    lambda: ns.link_set(tmp, ns.link_index(tmp), ifname=p["name"]),
                )
            )
        return steps


class Veth(KernelObject):
    """A veth pair: ``name`` in ``netns`` (a bridge port), ``peer_name`` in ``peer_netns`` with the address and MAC.

    The far namespace's loopback is brought up too, unless ``peer_lo`` is false (``overlay_host``, for a netns the
    user attached: the collection changes nothing of theirs, so their ``lo`` stays as they left it).
    """

    def validate(self):
        p = self.params
        v.interface(p["name"], "name")
        v.interface(p["peer_name"], "peer_name")
        for field in ("netns", "peer_netns"):
            if p[field] is not None:
                v.netns_name(p[field], field)
        if p["state"] == "absent":
            return
        if not p["peer_netns"]:
            raise v.InputError("peer_netns: required with state=present")
        if p["master"] is not None:
            v.interface(p["master"], "master")
        if p["mtu"] is not None:
            p["mtu"] = v.mtu(p["mtu"])
        self.address = None
        if p["address"]:
            ipaddr, prefix = v.interface_address(p["address"], "address")
            self.address = {"address": ipaddr, "prefixlen": prefix}
            p["address"] = f"{ipaddr}/{prefix}"
        if p["mac"]:
            p["mac"] = v.mac(p["mac"], "mac", unicast=True)
        elif self.address:
            p["mac"] = _model.derive_mac(self.address["address"])

    def _peer(self, near):
        """The far end, or None when it is missing or is not this pair's partner."""
        p = self.params
        if not p["peer_netns"] or not nl.netns_exists(p["peer_netns"]):
            return None
        peer = self.handles(p["peer_netns"]).link(p["peer_name"])
        if peer is None or peer["kind"] != "veth" or peer["link_index"] != near["index"]:
            return None
        return peer

    def read(self):
        p = self.params
        near = self._own_link("veth", "a veth")
        if near is None:
            return None
        state = {
            "name": p["name"],
            "netns": p["netns"],
            "master": near["master"],
            "mtu": near["mtu"],
            "up": near["up"],
            "peer_name": p["peer_name"],
            "peer_netns": p["peer_netns"],
            "alias": near["alias"],
        }
        peer = self._peer(near)
        if peer is None:
            state["peer"] = "missing"
            return state
        peer_ns = self.handles(p["peer_netns"])
        addrs = [f"{a['address']}/{a['prefixlen']}" for a in peer_ns.addresses(peer["index"])]
        state.update(
            address=addrs[0] if len(addrs) == 1 else (addrs or None),
            mac=peer["mac"],
            peer_mtu=peer["mtu"],
            peer_up=peer["up"],
        )
        if p.get("peer_lo", True):
            lo = peer_ns.link("lo")
            state["peer_lo_up"] = bool(lo and lo["up"])
        return state

    def predict(self, before):
        p = self.params
        if p["state"] == "absent":
            return None
        self._check_master()
        intact = before and "peer" not in before
        mtu = p["mtu"] or (before["mtu"] if intact else _model.DEFAULT_MTU)
        after = {
            "name": p["name"],
            "netns": p["netns"],
            "master": p["master"] or (before or {}).get("master"),
            "mtu": mtu,
            "up": True,
            "peer_name": p["peer_name"],
            "peer_netns": p["peer_netns"],
            "address": p["address"] or ((before or {}).get("address") if intact else None),
            "mac": p["mac"] or ((before or {}).get("mac") if intact else None),
            "peer_mtu": mtu,
            "peer_up": True,
            "alias": p.get("alias") or ((before or {}).get("alias") if intact else None),
        }
        if p.get("peer_lo", True):
            after["peer_lo_up"] = True
        return after

    def steps(self, before, after):
        p = self.params
        name, netns, peer, peer_netns = p["name"], p["netns"], p["peer_name"], p["peer_netns"]
        ns = self.handles(netns)
        steps = []
        if before is not None and (after is None or "peer" in before):
            steps.append(self._delete_step())
            before = None
        if after is None:
            return steps
        if before is None:
            # a netns that this check-mode run already made (foreseen), like an egress transit's ovl-<vni>, is there
            if not nl.netns_exists(peer_netns) and not self.handles.foreseen(peer_netns, None):
                steps.append(Step(ip_cmd(None, "netns", "add", peer_netns), lambda: nl.netns_create(peer_netns)))
            steps.append(
                Step(
                    ip_cmd(netns, "link", "add", name, "type", "veth", "peer", "name", peer, "netns", peer_netns),
                    lambda: ns.veth_add(name, peer, peer_netns),
                )
            )
            before = {
                "master": None,
                "mtu": None,
                "up": False,
                "address": None,
                "mac": None,
                "peer_mtu": None,
                "peer_up": False,
                "peer_lo_up": False,
                "alias": None,
            }

        def pns():
            return self.handles(peer_netns)

        def pidx(ifname=peer):
            return pns().link_index(ifname)

        if after["mac"] and before["mac"] != after["mac"]:
            steps.append(
                Step(
                    ip_cmd(peer_netns, "link", "set", peer, "address", after["mac"]),
                    lambda: pns().link_set(peer, pidx(), address=after["mac"]),
                )
            )
        if before["peer_mtu"] != after["mtu"]:
            steps.append(
                Step(
                    ip_cmd(peer_netns, "link", "set", peer, "mtu", after["mtu"]),
                    lambda: pns().link_set(peer, pidx(), mtu=after["mtu"]),
                )
            )
        if after["address"]:
            steps.extend(address_steps(pns, peer_netns, peer, before["address"], after["address"]))
        if not before["peer_up"]:
            steps.append(
                Step(ip_cmd(peer_netns, "link", "set", peer, "up"), lambda: pns().link_set(peer, pidx(), state="up"))
            )
        if after.get("peer_lo_up") and not before["peer_lo_up"]:
            steps.append(
                Step(
                    ip_cmd(peer_netns, "link", "set", "lo", "up"), lambda: pns().link_set("lo", pidx("lo"), state="up")
                )
            )
        steps.extend(port_steps(ns, netns, name, before, after))
        return steps
