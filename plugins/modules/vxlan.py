#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vxlan
short_description: Manage a VXLAN device whose socket stays on the underlay
version_added: 0.1.0
description:
  - Creates a VXLAN device the way Docker's overlay driver does. The device is created in the namespace the module
    runs in (the underlay), bound to O(local) and, when given, O(dev). It is then moved into O(netns) and renamed
    to O(name). Its UDP socket therefore stays on the underlay while the device serves the overlay namespace.
  - Learning is off and proxy is on by default. The static FDB and ARP entries are then the whole truth
    (see M(netfleet.overlay.fdb) and M(netfleet.overlay.neigh)), with no race against learned entries.
  - O(vni), O(port), O(local), O(dev) and O(proxy) cannot be changed on a live device. Changing them recreates the
    device, and the result says so in RV(recreated) and RV(recreate_reason). The kernel refuses to change C(proxy)
    in place (EOPNOTSUPP), so it is recreated too.
  - O(mtu), O(master) and O(learning) are changed in place.
author:
  - netfleet.overlay maintainers
extends_documentation_fragment:
  - netfleet.overlay.netns
  - netfleet.overlay.netns.attributes
options:
  name:
    description: Name of the device in O(netns).
    type: str
    default: vxlan0
  netns:
    description:
      - The namespace where the device ends up, for example C(ovl-256). It must exist.
      - Omit it to leave the device in the namespace the module runs in.
  vni:
    description: VXLAN network identifier, 1 to 16777215. Required with O(state=present).
    type: int
  port:
    description: UDP destination port.
    type: int
    default: 4789
  local:
    description:
      - Local VTEP address, IPv4 or IPv6. It must be an address of the host (checked before any change).
      - FDB destinations must be of the same family.
    type: str
  dev:
    description: Underlay device that the socket is bound to, in the namespace the module runs in.
    type: str
  learning:
    description: Whether the device learns remote MACs from received frames. Keep it off with static tables.
    type: bool
    default: false
  proxy:
    description: Whether the device answers ARP/ND from its neighbour table (needed for M(netfleet.overlay.neigh)).
    type: bool
    default: true
  master:
    description: Bridge in O(netns) that the device is a port of.
    type: str
  mtu:
    description:
      - MTU of the device.
      - When omitted, a new device gets the MTU of O(dev) (or 1500) minus the encapsulation overhead
        (50 bytes over IPv4, 70 over IPv6); an existing device keeps its MTU.
    type: int
  state:
    description: Whether the device exists.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: The vxlan0 of an overlay network, as Docker builds it (learning off here)
  netfleet.overlay.vxlan:
    name: vxlan0
    netns: ovl-256
    vni: 256
    port: 4789
    local: 198.18.1.1
    dev: eth0
    master: br0
    mtu: 1450
"""

RETURN = r"""
before:
  description: The device before the run (C({}) when absent).
  returned: always
  type: dict
  sample: {}
after:
  description: The device after the run; in check mode, the prediction.
  returned: always
  type: dict
  sample: {name: vxlan0, netns: ovl-256, vni: 256, port: 4789, local: 198.18.1.1, dev: eth0, learning: false,
           proxy: true, master: br0, mtu: 1450, up: true}
commands:
  description: The equivalent C(ip link) commands.
  returned: always
  type: list
  elements: str
recreated:
  description: Whether the device was (or, in check mode, would be) deleted and created again.
  returned: always
  type: bool
recreate_reason:
  description: The immutable attributes that forced the recreate, as C(old -> new).
  returned: when RV(recreated) is true
  type: str
  sample: vni 256 -> 300
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netfleet.overlay.plugins.module_utils import _validate as v
from ansible_collections.netfleet.overlay.plugins.module_utils._argspec import netns_option
from ansible_collections.netfleet.overlay.plugins.module_utils._objects import ObjectModule, Step, ip_cmd

IMMUTABLE = ("vni", "port", "local", "dev", "proxy")


class Vxlan(ObjectModule):
    def validate(self):
        p = self.params
        v.interface(p["name"], "name")
        if p["netns"] is not None:
            v.netns_name(p["netns"], "netns")
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
        under = self.ns(None)
        self.dev_index = None
        if p["dev"]:
            self.dev_index = under.link_index(p["dev"])
            if self.dev_index is None:
                raise v.InputError(f"dev: underlay device {p['dev']} not found in {under.label}")
        if p["local"]:
            mine = {a["address"] for link in under.links() for a in under.addresses(link["index"])}
            if p["local"] not in mine:
                raise v.InputError(
                    f"local: {p['local']} is not an address of this host ({under.label}); use the host's VTEP address"
                )

    def read(self):
        p = self.params
        ns = self.ns(p["netns"])
        link = ns.link(p["name"])
        if link is None:
            return None
        if link["kind"] != "vxlan":
            raise v.InputError(
                f"name: {p['name']} in {ns.label} is a {link['kind'] or 'plain'} device, not vxlan; "
                "remove it or choose another name"
            )
        x = link["vxlan"]
        dev = None
        if x["dev_index"]:
            under = self.ns(None)
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
        }

    def _default_mtu(self):
        p = self.params
        base = 1500
        if p["dev"]:
            base = self.ns(None).link(p["dev"])["mtu"]
        return base - (70 if p["local"] and ":" in p["local"] else 50)

    def predict(self, before):
        p = self.params
        if p["state"] == "absent":
            return None
        self._underlay_checks()
        if p["master"] and self.ns(p["netns"]).link_index(p["master"]) is None:
            raise v.InputError(f"master: bridge {p['master']} not found in {self.ns(p['netns']).label}")
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
        }

    def _reason(self, before):
        p = self.params
        return ", ".join(f"{k} {before[k]} -> {p[k]}" for k in IMMUTABLE if before[k] != p[k])

    def steps(self, before, after):
        p = self.params
        name, netns = p["name"], p["netns"]
        ns = self.ns(netns)
        self.result["recreated"] = False
        steps = []
        if after is None:
            if before is not None:
                steps.append(Step(ip_cmd(netns, f"link del {name}"), lambda: ns.link_del(name, ns.link_index(name))))
            return steps
        reason = self._reason(before) if before else ""
        if reason:
            self.result.update(recreated=True, recreate_reason=reason)
            steps.append(Step(ip_cmd(netns, f"link del {name}"), lambda: ns.link_del(name, ns.link_index(name))))
            before = None
        if before is None:
            steps.extend(self._create(after))
            before = dict(after, learning=p["learning"], master=None, up=False)
        if before["learning"] != after["learning"]:
            word = "learning" if after["learning"] else "nolearning"
            steps.append(
                Step(
                    ip_cmd(netns, f"link set {name} type vxlan {word}"),
                    lambda: ns.vxlan_set(name, ns.link_index(name), learning=after["learning"]),
                )
            )
        changes, words = {}, []
        if before["mtu"] != after["mtu"]:
            changes["mtu"], words = after["mtu"], [f"mtu {after['mtu']}"]
        if after["master"] and before["master"] != after["master"]:
            words.append(f"master {after['master']}")
        if not before["up"]:
            changes["state"] = "up"
            words.append("up")
        if words:

            def apply():
                extra = dict(changes)
                if after["master"] and before["master"] != after["master"]:
                    extra["master"] = ns.link_index(after["master"])
                ns.link_set(name, ns.link_index(name), **extra)

            steps.append(Step(ip_cmd(netns, f"link set {name} {' '.join(words)}"), apply))
        return steps

    def _create(self, want):
        """Create in the underlay namespace, then move into netns under the final name."""
        p = self.params
        under = self.ns(None)
        tmp = f"nfvx-{p['vni']:06x}" if p["netns"] else p["name"]
        words = [f"id {p['vni']}", f"dstport {p['port']}"]
        if p["local"]:
            words.append(f"local {p['local']}")
        if p["dev"]:
            words.append(f"dev {p['dev']}")
        words += [
            "learning" if p["learning"] else "nolearning",
            "proxy" if p["proxy"] else "noproxy",
            f"mtu {want['mtu']}",
        ]

        def add():
            if p["netns"]:
                # a device left under its temporary name by an interrupted run is ours by that name
                for ns in (under, self.ns(p["netns"])):
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

        steps = [Step(f"ip link add {tmp} type vxlan {' '.join(words)}", add)]
        if p["netns"]:
            steps.append(
                Step(
                    f"ip link set {tmp} netns {p['netns']}",
                    lambda: under.link_set(tmp, under.link_index(tmp), net_ns_fd=p["netns"]),
                )
            )
            ns = self.ns(p["netns"])
            steps.append(
                Step(
                    ip_cmd(p["netns"], f"link set {tmp} name {p['name']}"),
                    lambda: ns.link_set(tmp, ns.link_index(tmp), ifname=p["name"]),
                )
            )
        return steps


def main():
    spec = netns_option()
    spec.update(
        {
            "name": {"type": "str", "default": "vxlan0"},
            "vni": {"type": "int"},
            "port": {"type": "int", "default": 4789},
            "local": {"type": "str"},
            "dev": {"type": "str"},
            "learning": {"type": "bool", "default": False},
            "proxy": {"type": "bool", "default": True},
            "master": {"type": "str"},
            "mtu": {"type": "int"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        }
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True, required_if=[("state", "present", ["vni"])])
    Vxlan(module).run()


if __name__ == "__main__":
    main()
