#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: veth
short_description: Manage an endpoint link, a veth pair from a bridge into an endpoint namespace
version_added: 0.1.0
description:
  - Plugs an endpoint into an overlay the way Docker plugs a container in. The near end O(name) is a port of the
    bridge O(master) in O(netns). The far end is O(peer_name) (C(eth0)) inside the endpoint namespace
    O(peer_netns), which is created when missing, with O(address), O(mac) and O(mtu). Both ends and the
    endpoint's loopback are up.
  - A pair whose far end is missing or is not this pair's partner is recreated.
  - Other global addresses on the far end are removed, so O(address) is the endpoint's only address.
author:
  - netfleet.overlay maintainers
extends_documentation_fragment:
  - netfleet.overlay.netns
  - netfleet.overlay.netns.attributes
options:
  name:
    description: Name of the near end, in O(netns), for example C(veth-hosta).
    type: str
    required: true
  netns:
    description: Namespace of the near end and of O(master), for example C(ovl-256). It must exist.
  master:
    description: Bridge in O(netns) that the near end is a port of.
    type: str
  peer_name:
    description: Name of the far end inside O(peer_netns).
    type: str
    default: eth0
  peer_netns:
    description:
      - Endpoint namespace of the far end, created when missing. Required with O(state=present).
      - O(state=absent) removes the pair but leaves this namespace; remove it with M(netfleet.overlay.netns).
    type: str
  address:
    description: Address with prefix length of the far end, for example C(10.213.0.2/24). IPv4 or IPv6.
    type: str
  mac:
    description:
      - MAC of the far end.
      - When omitted and O(address) is given, it is derived from the address as Docker does
        (C(02:42:) and the IPv4 bytes; a stable locally administered MAC for IPv6).
    type: str
  mtu:
    description:
      - MTU of both ends. Keep it at or below the vxlan MTU, or large packets are dropped silently.
      - When omitted, a new pair gets 1500 and an existing one keeps its MTU.
    type: int
  state:
    description: Whether the pair exists.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Plug endpoint hosta into overlay 256
  netfleet.overlay.veth:
    name: veth-hosta
    netns: ovl-256
    master: br0
    peer_name: eth0
    peer_netns: hosta
    address: 10.213.0.2/24
    mtu: 1450
"""

RETURN = r"""
before:
  description: The pair before the run (C({}) when absent).
  returned: always
  type: dict
  sample: {}
after:
  description: The pair after the run; in check mode, the prediction.
  returned: always
  type: dict
  sample: {name: veth-hosta, netns: ovl-256, master: br0, mtu: 1450, up: true, peer_name: eth0, peer_netns: hosta,
           address: 10.213.0.2/24, mac: 02:42:0a:d5:00:02}
commands:
  description: The equivalent C(ip) commands.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netfleet.overlay.plugins.module_utils import _netlink as nl
from ansible_collections.netfleet.overlay.plugins.module_utils import _validate as v
from ansible_collections.netfleet.overlay.plugins.module_utils._argspec import netns_option
from ansible_collections.netfleet.overlay.plugins.module_utils._objects import ObjectModule, Step, ip_cmd

KERNEL_DEFAULT_MTU = 1500


class Veth(ObjectModule):
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
            p["mac"] = v.derive_mac(self.address["address"])

    def _peer(self, near):
        """The far end, or None when it is missing or is not this pair's partner."""
        p = self.params
        if not p["peer_netns"] or not nl.netns_exists(p["peer_netns"]):
            return None
        peer = self.ns(p["peer_netns"]).link(p["peer_name"])
        if peer is None or peer["kind"] != "veth" or peer["link_index"] != near["index"]:
            return None
        return peer

    def read(self):
        p = self.params
        ns = self.ns(p["netns"])
        near = ns.link(p["name"])
        if near is None:
            return None
        if near["kind"] != "veth":
            raise v.InputError(
                f"name: {p['name']} in {ns.label} is a {near['kind'] or 'plain'} device, not a veth; "
                "remove it or choose another name"
            )
        state = {
            "name": p["name"],
            "netns": p["netns"],
            "master": near["master"],
            "mtu": near["mtu"],
            "up": near["up"],
            "peer_name": p["peer_name"],
            "peer_netns": p["peer_netns"],
        }
        peer = self._peer(near)
        if peer is None:
            state["peer"] = "missing"
            return state
        peer_ns = self.ns(p["peer_netns"])
        addrs = [f"{a['address']}/{a['prefixlen']}" for a in peer_ns.addresses(peer["index"])]
        lo = peer_ns.link("lo")
        state.update(
            address=addrs[0] if len(addrs) == 1 else (addrs or None),
            mac=peer["mac"],
            peer_mtu=peer["mtu"],
            peer_up=peer["up"],
            peer_lo_up=bool(lo and lo["up"]),
        )
        return state

    def predict(self, before):
        p = self.params
        if p["state"] == "absent":
            return None
        if p["master"] and self.ns(p["netns"]).link_index(p["master"]) is None:
            raise v.InputError(f"master: bridge {p['master']} not found in {self.ns(p['netns']).label}")
        intact = before and "peer" not in before
        mtu = p["mtu"] or (before["mtu"] if intact else KERNEL_DEFAULT_MTU)
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
            "peer_lo_up": True,
        }
        return after

    def steps(self, before, after):
        p = self.params
        name, netns, peer, peer_netns = p["name"], p["netns"], p["peer_name"], p["peer_netns"]
        ns = self.ns(netns)
        steps = []
        if before is not None and (after is None or "peer" in before):
            steps.append(Step(ip_cmd(netns, f"link del {name}"), lambda: ns.link_del(name, ns.link_index(name))))
            before = None
        if after is None:
            return steps
        if before is None:
            if not nl.netns_exists(peer_netns):
                steps.append(Step(f"ip netns add {peer_netns}", lambda: nl.netns_create(peer_netns)))
            steps.append(
                Step(
                    ip_cmd(netns, f"link add {name} type veth peer name {peer} netns {peer_netns}"),
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
            }

        def pns():
            return self.ns(peer_netns)

        def pidx(ifname=peer):
            return pns().link_index(ifname)

        if after["mac"] and before["mac"] != after["mac"]:
            steps.append(
                Step(
                    ip_cmd(peer_netns, f"link set {peer} address {after['mac']}"),
                    lambda: pns().link_set(peer, pidx(), address=after["mac"]),
                )
            )
        if before["peer_mtu"] != after["mtu"]:
            steps.append(
                Step(
                    ip_cmd(peer_netns, f"link set {peer} mtu {after['mtu']}"),
                    lambda: pns().link_set(peer, pidx(), mtu=after["mtu"]),
                )
            )
        if after["address"] and before["address"] != after["address"]:
            current = before["address"] or []
            for stale in [current] if isinstance(current, str) else current:
                if stale != after["address"]:
                    ip_, plen = stale.split("/")
                    steps.append(
                        Step(
                            ip_cmd(peer_netns, f"addr del {stale} dev {peer}"),
                            lambda ip_=ip_, plen=plen: pns().addr_del(peer, pidx(), ip_, int(plen)),
                        )
                    )
            if after["address"] not in ([current] if isinstance(current, str) else current):
                steps.append(
                    Step(
                        ip_cmd(peer_netns, f"addr add {after['address']} dev {peer}"),
                        lambda: pns().addr_add(peer, pidx(), self.address["address"], self.address["prefixlen"]),
                    )
                )
        if not before["peer_up"]:
            steps.append(
                Step(ip_cmd(peer_netns, f"link set {peer} up"), lambda: pns().link_set(peer, pidx(), state="up"))
            )
        if not before["peer_lo_up"]:
            steps.append(
                Step(ip_cmd(peer_netns, "link set lo up"), lambda: pns().link_set("lo", pidx("lo"), state="up"))
            )
        words, changes = [], {}
        if before["mtu"] != after["mtu"]:
            words.append(f"mtu {after['mtu']}")
            changes["mtu"] = after["mtu"]
        if after["master"] and before["master"] != after["master"]:
            words.append(f"master {after['master']}")
        if not before["up"]:
            words.append("up")
            changes["state"] = "up"
        if words:

            def apply():
                extra = dict(changes)
                if after["master"] and before["master"] != after["master"]:
                    extra["master"] = ns.link_index(after["master"])
                ns.link_set(name, ns.link_index(name), **extra)

            steps.append(Step(ip_cmd(netns, f"link set {name} {' '.join(words)}"), apply))
        return steps


def main():
    spec = netns_option()
    spec.update(
        {
            "name": {"type": "str", "required": True},
            "master": {"type": "str"},
            "peer_name": {"type": "str", "default": "eth0"},
            "peer_netns": {"type": "str"},
            "address": {"type": "str"},
            "mac": {"type": "str"},
            "mtu": {"type": "int"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        }
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    Veth(module).run()


if __name__ == "__main__":
    main()
