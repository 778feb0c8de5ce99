#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: overlay_host
short_description: Converge one host's whole overlay state in one run
version_added: 0.1.0
description:
  - Takes one host's part of the fleet plan, as M(netfleet.overlay.overlay_plan) computes it and the filter
    R(netfleet.overlay.host_tables,ansible_collections.netfleet.overlay.host_tables_filter) expands it, and
    converges the host to it in one module run.
  - It first purges what the collection owns on the host but is no longer wanted (endpoints, then networks). Then,
    per network, it creates the overlay netns, the bridge, the vxlan device and the endpoints, and finally sets
    the ARP and FDB tables of the vxlan device (C(overridden)).
  - It uses the same planners as M(netfleet.overlay.netns), M(netfleet.overlay.bridge), M(netfleet.overlay.vxlan),
    M(netfleet.overlay.veth), M(netfleet.overlay.neigh) and M(netfleet.overlay.fdb). Those modules stay for
    hand-built topologies.
  - What the collection owns on the host is its ownership record, C(/run/netfleet-overlay/ownership.json) (root
    only, mode 0700 directory), written before anything is created and after every run, also a failed one. Only
    what the record names is ever purged, and an endpoint's netns is deleted only when the record says that the
    collection created it. Interface aliases are still written for people reading C(ip link), but never trusted.
  - A netns that the plan wants (a network's C(ovl-<vni>), an endpoint's) that exists but is not in the record is
    someone else's. The run then fails before any change, naming the host and the netns; the netns is left as it is.
  - A host that release 0.1.0 converged has no record. Its networks and endpoints are taken over from the aliases
    0.1.0 wrote, but only inside namespaces named C(ovl-<vni>) (a vxlan device of that VNI, and veths whose peer
    really is in the netns their alias names), and recorded; nothing in the kernel changes for that.
  - Before any change it validates O(networks), and looks for a vxlan device that the collection did not make
    and that already uses a network's UDP port on O(vtep) (bound to it, or to no address). Both would share one
    kernel socket, so the run fails, naming the device, its VNI, the port and the address.
  - The diff (diff mode) shows, per network, its netns, bridge, vxlan device and endpoint veths with the
    attributes that are compared, and its FDB and ARP tables as C(bridge fdb show) and C(ip neigh show) lines;
    and what the collection owns on the host.
  - With O(firewall=true) it also keeps the VTEP allowlist, the nftables table C(inet netfleet_overlay) in the
    host's namespace, as M(netfleet.overlay.vtep_firewall) does. The table is put in place before the first
    network is created and removed after the last one is gone (O(state=absent), no networks, or
    O(firewall=false)). No other table is ever touched.
  - For each network with C(egress), after its endpoints, it builds the way out through this host - the gateway on
    C(br0), a transit veth C(egress0) (in C(ovl-<vni>)) / C(ovg-<vni>) (in the host's namespace) with routes both
    ways, IPv4 forwarding turned on for exactly C(br0), C(egress0), C(ovg-<vni>) and the VTEP's device, each
    endpoint's default route via the gateway (never replacing a default route that is already in its netns; the
    run warns instead), and the egress part of the table C(inet netfleet_overlay), kept whatever O(firewall) says -
    masquerade to the VTEP device's address, return traffic in, nothing new in, no network to another. C(egress)
    off removes all of it, and the VTEP device's forwarding is turned off again with the host's last egress network
    when the collection turned it on (the record says so). IPv4 networks only. See C(docs/egress.md).
  - For each network with C(dns), after its tables, it keeps a DNS server (dnsmasq) in the network's C(ovl-<vni>),
    listening only on the gateway address and answering only the network's C(names). A names change rewrites its
    hosts file and makes it re-read it (SIGHUP, no restart). It is supervised by the template unit
    C(netfleet-overlay-dns@.service) where systemd is PID 1, and otherwise started by the module itself, whose every
    run checks that the recorded pid is still that dnsmasq in that netns and starts it again if not. Each endpoint in
    a netns the collection made gets C(/etc/netns/<endpoint>/resolv.conf) naming the gateway. A server whose network
    is gone or has C(dns) off is stopped and its files removed (also with O(state=absent)). See C(docs/dns.md).
  - With O(wireguard) the host has encrypted networks. After the purge and before the first network it converges
    its WireGuard tunnel - the namespace C(ovl-wg), the interface C(wg-overlay) made in the host's namespace (its
    UDP socket, port C(wireguard.port), stays on the underlay) and moved into C(ovl-wg), with the tunnel address,
    MTU, the host's private key (made on the host, C(/run/netfleet-overlay/wireguard/private.key), mode 0600, never
    returned or logged) and exactly the peers of C(wireguard.peers), through C(wg syncconf). The kernel's WireGuard
    is used where it exists, otherwise C(wireguard-go), which every run checks and starts again if it died.
  - An encrypted network (C(encrypted) true) gets its C(vxlan0) made in C(ovl-wg) with C(local) the tunnel address
    and every FDB destination a peer's tunnel address, so its VXLAN socket is reachable only through the tunnel. A
    rogue VXLAN packet on the underlay with its VNI finds no socket there. Turning C(encrypted) on or off recreates
    C(vxlan0) (its C(local) changes) and refills its tables in the same run.
  - Without O(wireguard) (and with O(state=absent)) the tunnel, C(ovl-wg), the daemon and the keys are removed,
    after the networks, when the ownership record names the tunnel or keys are left; an C(ovl-wg) the record does
    not name is someone else's, and a run that wants the tunnel fails before any change.
  - The whole run holds an exclusive lock on the host (C(flock) on C(/run/netfleet-overlay/host.lock)), so two
    runs that converge the same host at the same time take turns instead of interleaving. See O(lock_timeout).
  - This is what the role C(netfleet.overlay.overlay) runs; you rarely call it directly.
author:
  - netfleet.overlay maintainers (@netfleet)
extends_documentation_fragment:
  - netfleet.overlay.netns.attributes
  - netfleet.overlay.netns.lock_timeout
options:
  vtep:
    description: The host's VTEP address. It must be one of the host's addresses; the vxlan devices are bound to it.
    type: str
  networks:
    description:
      - This host's networks, each as the filter returns it (C(name), C(vni), C(port), C(mtu), C(netns), C(bridge),
        C(vxlan), C(endpoints), C(neigh), C(fdb)).
      - Optional per network, C(peer_hosts), a dict of remote VTEP -> hostname (or null), which the record keeps
        as C(peers) (see M(netfleet.overlay.overlay_facts)). Optional per endpoint, C(ifname) (default C(eth0))
        and C(attached) (default V(false); with V(true) the netns is the user's, and only the veth is the collection's).
      - Optional per network, C(egress) and C(dns) (default V(false)), C(gateway) (C(address), C(prefixlen),
        C(mac); needed by either), and C(names), a dict of DNS name -> address.
      - Optional per network, C(encrypted) (default V(false)). V(true) needs O(wireguard); the network's C(fdb)
        destinations and C(peer_hosts) keys are then the peers' tunnel addresses, and its C(mtu) leaves room for
        WireGuard's overhead on top of VXLAN's.
      - Optional per network, C(flood) (default V(false)) and C(proxy) (default V(true)). C(flood) lets C(fdb) hold
        the head-end flood list (C(00:00:00:00:00:00) once per peer VTEP), refused on a network without it.
        C(proxy=false) needs C(flood=true) - the peers then answer ARP and neighbour solicitations themselves, flooded.
        The kernel cannot change C(proxy) on a live device, so a change recreates C(vxlan0) and refills its tables in
        the same run, a short outage of that network on that host.
    type: list
    elements: dict
    default: []
  preserve_vteps:
    description:
      - VTEPs of hosts whose state is unknown in this run (unreachable without cached facts). Existing FDB entries
        pointing at them, and the ARP entries of those MACs, are left as they are.
    type: list
    elements: str
    default: []
  keep_endpoints:
    description:
      - Names of endpoints this run must not remove, though O(networks) no longer lists them on this host, nor the
        network that holds them. The role passes the endpoints that move away from this host while it also
        receives one, in the first pass of a run with moves (make-before-break); the host's last pass, without it,
        removes them.
      - A held network that O(networks) no longer lists is not converged in this run - its devices and tables stay,
        but its DNS server, its egress and its peers in the default O(allow) follow O(networks) as usual.
      - The record keeps them, and the summary does not count them as removed.
    type: list
    elements: str
    default: []
    version_added: 0.2.0
  firewall:
    description:
      - Keep the VTEP allowlist. On the host's VTEP address, UDP to O(ports) is accepted only from O(allow); the
        rest of it is dropped.
      - V(false) removes the allowlist, and the collection's table with it unless a network has C(egress), whose
        part of the table stays.
      - Needs C(nft) (the C(nftables) package) on the host.
    type: bool
    default: false
  allow:
    description:
      - The remote VTEPs that may send VXLAN to this host, with O(firewall=true).
      - Defaults to the C(peers) of the unencrypted networks of O(networks) and O(preserve_vteps), which is what the
        filter's C(allowlist) holds.
    type: list
    elements: str
  ports:
    description:
      - The UDP ports that the allowlist guards, with O(firewall=true).
      - Defaults to the C(port) of every unencrypted network of O(networks). A port that only encrypted networks
        use is not opened on the underlay - their VXLAN sockets are inside the tunnel.
    type: list
    elements: int
  wireguard:
    description:
      - The host's WireGuard tunnel, which its encrypted networks ride in, as the filter's C(wireguard) returns it.
        Null (the default) - the host has no encrypted network, and its tunnel, if any, is removed.
      - C(address) and C(prefixlen) - the host's tunnel address in the tunnel subnet (C(overlay_wireguard_subnet)),
        which must not hold the VTEP. C(port) - the tunnel's UDP port on the underlay. C(mtu) - the MTU of
        C(wg-overlay).
      - C(peers) - a list of dicts C(host), C(public_key) (base64), C(endpoint) (the peer's VTEP and port,
        C(198.18.1.2:51820) or C([2001:db8::2]:51820)) and C(address) (its tunnel address), no host, key, address or
        endpoint twice. They are the tunnel's whole peer list, each with the allowed IPs of its tunnel address.
      - C(rotate) (default V(false)) - V(true) switches the host to its staged key
        (M(netfleet.overlay.wireguard_key) with C(rotate=true)) in this run, and the peers' keys given are their new
        ones.
      - C(switch_at) (default null) - with C(rotate), the instant (epoch seconds) at which the host switches keys.
        M(netfleet.overlay.overlay_plan) gives the hosts of a rotation instants a few tens of milliseconds apart, so
        that no pair of hosts holds mismatched keys for long, and no two hosts switch at the same moment. A host that
        gets there late switches at once, and warns.
    type: dict
    version_added: 0.3.0
  wireguard_allow:
    description:
      - The VTEPs that may send to C(wireguard.port) on the VTEP, with O(firewall=true) and O(wireguard). The rest
        of that port is dropped, as the VXLAN ports are.
      - Defaults to the VTEPs of the C(endpoint)s of C(wireguard.peers), which is what the filter's
        C(wireguard_allow) holds.
    type: list
    elements: str
    version_added: 0.3.0
  state:
    description: V(absent) removes everything the collection owns on the host (also the VTEP allowlist).
    type: str
    choices: [present, absent]
    default: present
notes:
  - In check mode, RV(commands), the diff and C(changed) are what a real run would do; a network whose namespace
    does not exist yet is planned as empty, so every command that creates it is listed.
  - In diff mode, the networks and endpoints that the run removes are also listed by name, one line each, and the
    WireGuard tunnel when the run removes it.
"""

EXAMPLES = r"""
- name: Converge this host (the role does this)
  netfleet.overlay.overlay_host:
    vtep: "{{ overlay_vtep }}"
    networks: "{{ _overlay_tables[inventory_hostname].networks }}"
    preserve_vteps: "{{ _overlay_tables[inventory_hostname].preserve_vteps }}"
    firewall: true
    allow: "{{ _overlay_tables[inventory_hostname].allowlist }}"
    ports: "{{ _overlay_tables[inventory_hostname].ports }}"
"""

RETURN = r"""
commands:
  description:
    - The equivalent C(ip) and C(bridge) commands of every change, in order, and the C(nft) statements of the
      allowlist (applied as one C(nft -f -) transaction).
  returned: always
  type: list
  elements: str
removed:
  description: Networks and endpoints that were purged.
  returned: always
  type: dict
  sample: {networks: [], endpoints: [hostc]}
summary:
  description:
    - One line for people, empty when nothing changed. Networks and endpoints added (C(+)), repaired or rebuilt
      (C(~)) and removed (C(-)) by name, then the FDB and ARP entries added and deleted, and the networks whose
      egress was built or repaired (C(egress on)) or removed (C(egress off)). The role prints it, after the host's
      name, for every changed host.
  returned: always, and on a failure after a change
  type: str
  sample: "+1 endpoint (web3), -1 network (backend), fdb +3 -2, arp +3 -2"
commands_done:
  description: On a failure, the commands that were applied before it (C(changed) is true when there is any).
  returned: failure
  type: list
  elements: str
not_done:
  description:
    - On a failure after the run began, what it did not get to, by name. The next run carries on from there.
  returned: failure
  type: dict
  sample: {remove_endpoints: [], remove_networks: [backend], networks: [overlay_network]}
networks:
  description: Per network, its FDB and ARP tables before and after.
  returned: always
  type: list
  elements: dict
firewall:
  description:
    - The table C(inet netfleet_overlay) before and after, as M(netfleet.overlay.vtep_firewall) returns it, the
      VTEP allowlist and, with an C(egress) network, the egress chains (C(egress_forward), C(egress_input),
      C(egress_nat)) in C(rules). A side is empty when there is no table.
  returned: always
  type: dict
  sample:
    before: {}
    after:
      table: inet netfleet_overlay
      allow: [198.18.1.2, 198.18.1.3]
      ports: [4789]
      rules:
        input:
          - udp dport @ports ip daddr 198.18.1.1 ip saddr @vteps accept
          - udp dport @ports counter drop
ansible_facts:
  description:
    - C(netfleet_overlay), the host's overlay facts after the run, as M(netfleet.overlay.overlay_facts) returns them
      (not in check mode).
    - Among them C(wireguard), the tunnel's implementation, public keys, address, port and peers (never a private
      key), as M(netfleet.overlay.overlay_facts) reports it.
  returned: when not in check mode
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netfleet.overlay.plugins.module_utils import _host, _lock
from ansible_collections.netfleet.overlay.plugins.module_utils._module import run


def main():
    module = AnsibleModule(
        argument_spec={
            "vtep": {"type": "str"},
            "networks": {"type": "list", "elements": "dict", "default": []},
            "preserve_vteps": {"type": "list", "elements": "str", "default": []},
            "keep_endpoints": {"type": "list", "elements": "str", "default": []},
            "firewall": {"type": "bool", "default": False},
            "allow": {"type": "list", "elements": "str"},
            "ports": {"type": "list", "elements": "int"},
            "wireguard": {"type": "dict"},
            "wireguard_allow": {"type": "list", "elements": "str"},
            "lock_timeout": {"type": "int", "default": _lock.DEFAULT_TIMEOUT},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        },
        required_if=[("state", "present", ["vtep"])],
        supports_check_mode=True,
    )
    run(module, _host.converge, failed={"changed": False, "commands_done": []})


if __name__ == "__main__":
    main()
