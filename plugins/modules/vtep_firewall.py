#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vtep_firewall
short_description: Accept VXLAN on a host's VTEP only from known VTEPs
version_added: 0.1.0
description:
  - Keeps one nftables table, C(inet netfleet_overlay), in the namespace the module runs in (the host's own, the
    underlay, where the VXLAN sockets live). It accepts UDP to O(ports) only from the addresses of O(allow) to the
    VTEP address O(vtep), and drops (and counts) UDP to those ports on every other local address, IPv4 and IPv6,
    loopback, broadcast and multicast included.
  - Without it, anyone who can send UDP to the overlay port on any address of the host can inject frames into an
    overlay network by sending a VXLAN packet with its VNI. The kernel binds VXLAN sockets to the wildcard address
    and never compares a packet's outer destination with the device's local address, so guarding the VTEP address
    alone is not enough.
  - The allowlist is the named set C(vteps) and the ports are the named set C(ports), so
    C(nft list set inet netfleet_overlay vteps) shows who may send.
  - The current table is read with C(nft -j list table inet netfleet_overlay) and compared with the wanted one.
    When they differ, the whole table is replaced in one C(nft -f -) transaction. Only this table is ever read
    or written; every other table of the host is left alone.
  - Nothing puts the table back after C(nft flush ruleset) (a reload of Debian's C(nftables.service) does that)
    until the next run; M(netfleet.overlay.overlay_facts) reports it as C(firewall.present) and
    C(firewall.intact). docs/security.md says how to make it persistent.
  - The egress chains and set that M(netfleet.overlay.overlay_host) keeps in the same table for networks with
    C(egress) (C(egress_*), see docs/egress.md) are left as they are, also by O(state=absent).
  - The role C(netfleet.overlay.overlay) keeps this table through M(netfleet.overlay.overlay_host) (role variable
    C(overlay_firewall)); use this module for hand-built topologies.
author:
  - netfleet.overlay maintainers (@netfleet)
extends_documentation_fragment:
  - netfleet.overlay.netns.attributes
  - netfleet.overlay.netns.lock_timeout
options:
  vtep:
    description: The host's VTEP address, the only address that accepts O(ports), from O(allow). Required with
      O(state=present).
    type: str
  allow:
    description: The remote VTEPs that may send to O(ports), of the same address family as O(vtep).
    type: list
    elements: str
    default: []
  ports:
    description: The UDP ports of the VXLAN devices that are guarded.
    type: list
    elements: int
    default: [4789]
  wireguard_port:
    description:
      - The UDP port of the host's WireGuard tunnel (encrypted networks), accepted on O(vtep) only from
        O(wireguard_allow) (the set C(wg_vteps)) and dropped on every other address. Omit it for no tunnel.
      - O(ports) may then be empty - a host whose networks are all encrypted opens no VXLAN port.
    type: int
    version_added: 0.3.0
  wireguard_allow:
    description: The VTEPs of the tunnel's peers, which may send to O(wireguard_port).
    type: list
    elements: str
    default: []
    version_added: 0.3.0
  state:
    description: V(present) makes the table exactly as described; V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
requirements:
  - C(nft) (the C(nftables) package) on the managed host
  - Linux with nf_tables; root (CAP_NET_ADMIN)
notes:
  - The counter of the drop rule restarts from zero whenever the table is replaced.
"""

EXAMPLES = r"""
- name: Only the other two hosts may send VXLAN to this one
  netfleet.overlay.vtep_firewall:
    vtep: 198.18.1.1
    allow: [198.18.1.2, 198.18.1.3]
    ports: [4789]

- name: Remove the allowlist
  netfleet.overlay.vtep_firewall:
    state: absent
"""

RETURN = r"""
before:
  description: The table before the run (empty when there was none).
  returned: always
  type: dict
  sample: {}
after:
  description: The table after the run; in check mode, the predicted table.
  returned: always
  type: dict
  contains:
    table:
      description: Family and name of the table.
      type: str
      sample: inet netfleet_overlay
    allow:
      description: Elements of the set C(vteps).
      type: list
      elements: str
      sample: [198.18.1.2, 198.18.1.3]
    ports:
      description: Elements of the set C(ports).
      type: list
      elements: int
      sample: [4789]
    rules:
      description: The rules per chain, as nft text (counter values left out).
      type: dict
      sample:
        input:
          - udp dport @ports ip daddr 198.18.1.1 ip saddr @vteps accept
          - udp dport @ports counter drop
commands:
  description: The nft statements of the change, applied in this order as one C(nft -f -) transaction.
  returned: always
  type: list
  elements: str
  sample:
    - add table inet netfleet_overlay
    - delete table inet netfleet_overlay
    - add table inet netfleet_overlay
    - "add set inet netfleet_overlay ports { type inet_service; }"
    - "add element inet netfleet_overlay ports { 4789 }"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netfleet.overlay.plugins.module_utils import _discover, _firewall, _lock, _model
from ansible_collections.netfleet.overlay.plugins.module_utils._module import run


def converge(module) -> dict:
    """Put the wanted table in place (or remove it), under the host lock."""
    p = module.params
    nft = _firewall.Nft(module.run_command, _discover.nft_binary())
    allowlist = (
        _firewall.wanted(p["vtep"], p["allow"], p["ports"], p["wireguard_allow"], p["wireguard_port"])
        if p["state"] == "present"
        else None
    )
    with _lock.host_lock(p["lock_timeout"]):
        # the egress part that overlay_host keeps in the same table stays as it is
        egress = _firewall.part(nft.read(), egress_part=True) if nft.binary else None
        return _firewall.converge(nft, _firewall.merge(allowlist, egress), module.check_mode)


def main():
    module = AnsibleModule(
        argument_spec={
            "vtep": {"type": "str"},
            "allow": {"type": "list", "elements": "str", "default": []},
            "ports": {"type": "list", "elements": "int", "default": [_model.DEFAULT_PORT]},
            "wireguard_port": {"type": "int"},
            "wireguard_allow": {"type": "list", "elements": "str", "default": []},
            "lock_timeout": {"type": "int", "default": _lock.DEFAULT_TIMEOUT},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        },
        required_if=[("state", "present", ["vtep"])],
        supports_check_mode=True,
    )
    run(module, converge, pyroute2=False)


if __name__ == "__main__":
    main()
