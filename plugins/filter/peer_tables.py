# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``netfleet.overlay.peer_tables`` filter: docs, argument checks and the FilterModule.

The logic lives in ``plugin_utils/peer_tables.py`` (pure, unit-tested on plain data).
"""

from __future__ import annotations

DOCUMENTATION = """
name: peer_tables
author: netfleet.overlay maintainers
version_added: 0.1.0
short_description: Compute every host's VXLAN overlay part (addresses, names, ARP and FDB tables) at once
description:
  - Takes the fleet-wide O(overlay_networks) list and a O(fleet) dict of host records, and returns, for every
    host, what it must build. Per overlay network, that is the overlay netns (C(ovl-<vni>)) with C(br0) and C(vxlan0),
    its own endpoints (netns, veth, address, MAC, MTU) and the static ARP (C(neigh)) and FDB (C(fdb)) entries
    for every remote endpoint on that network.
  - Computed once for the whole fleet, in time linear in the number of endpoints (plus the size of the output).
    Use it instead of Jinja loops over C(hostvars), which are quadratic.
  - Its result holds every host's expanded tables at once, so it grows with the number of hosts times the remote
    endpoints each one sees. The role C(netfleet.overlay.overlay) does not use it. It runs
    M(netfleet.overlay.overlay_plan) once, whose plan holds each network's endpoints once, and expands each host's
    part with R(netfleet.overlay.host_tables,ansible_collections.netfleet.overlay.host_tables_filter), which
    returns the same record as this filter does for that host.
  - "IPAM: the first usable address of each subnet is reserved as the gateway (Docker style), so endpoints
    start at the second (C(10.213.0.2)). Explicit addresses always win; an existing endpoint keeps the address
    its host's facts (O(fleet.current)) show; new endpoints get the lowest free address, in (host, endpoint)
    order. Adding or removing other endpoints never renumbers an existing one."
  - MACs that are not given are derived, Docker style. For IPv4 that is C(02:42:) followed by the four address
    bytes; for IPv6, C(02:) followed by the first five bytes of sha256(network name + C(/) + packed address).
  - The MTU defaults to the host's underlay MTU minus the VXLAN overhead (50 bytes over an IPv4 underlay,
    70 over IPv6).
  - An unreachable host is never treated as gone. Its endpoints stay in the other hosts' tables as its
    facts (for example from the fact cache) show them; without facts, the other hosts get its VTEP in
    C(preserve_vteps), meaning that entries pointing at it must be left alone. Its own record has C(skip=true).
  - Bad input fails with a message naming the field, the host and the value. Network names follow the endpoint
    naming rule, subnets of two networks must not overlap, and a network C(mtu) larger than a host's
    C(underlay_mtu) minus the VXLAN overhead fails, naming the host, the network and the largest MTU that fits.
  - "The guards of M(netfleet.overlay.overlay_plan) apply: for the reachable hosts whose records carry what their
    facts show (C(current), C(current_networks), C(peers), C(netns)), a host that would lose its whole overlay, more
    than O(purge_limit) endpoints removed, or a planned netns that exists but that the collection did not create,
    fail; entries held for VTEPs of hosts that are not in O(fleet) are kept (see O(forget_hosts))."
positional: _input, fleet
options:
  _input:
    description: The fleet-wide O(overlay_networks) list.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Network name, unique in the fleet.
        type: str
        required: true
      vni:
        description: VXLAN network identifier, 1..16777215, unique in the fleet.
        type: int
        required: true
      subnet:
        description:
          - IPv4 or IPv6 network in CIDR form (the network address, no host bits).
          - At most /30 for IPv4 and /126 for IPv6.
        type: str
        required: true
      port:
        description: UDP port of the VXLAN socket.
        type: int
        default: 4789
      mtu:
        description:
          - MTU of the network's vxlan, bridge and veth devices.
          - At least 1280 on an IPv6 subnet, at least 68 otherwise.
          - Defaults, per host, to the underlay MTU minus the VXLAN overhead.
        type: int
      egress:
        description:
          - Endpoints reach the outside through their own host (NAT). Gives the network its gateway (see C(dns)).
          - A boolean (or the text that Ansible's C(bool) type reads as one).
        type: bool
        default: false
      dns:
        description:
          - Endpoints resolve each other as C(<endpoint>) and C(<endpoint>.<network>). Gives the network its
            gateway, and makes every name of its endpoints a DNS name that names one endpoint (DNS ignores case).
          - "The gateway of a network with C(egress) or C(dns) is its first host address (C(.1),
            C(::1)), which IPAM reserves anyway, with the same MAC on every host (C(06:00:) + the 24-bit VNI +
            C(:01)); it is in no ARP or FDB table."
        type: bool
        default: false
      flood:
        description:
          - Broadcast, unknown unicast and multicast reach every endpoint of the network on every host. Each host
            of the network gets one flood entry (C(00:00:00:00:00:00)) per peer VTEP in its C(fdb) (the other
            hosts with endpoints on the network and its preserved VTEPs, never its own, never one of another
            network), and the entries follow the network's membership.
          - Each such packet is sent once per peer VTEP (head-end replication), so its cost grows with the network's
            hosts.
        type: bool
        default: false
      proxy:
        description:
          - The vxlan device answers ARP and neighbour solicitations for the remote endpoints from the static table.
          - V(false) needs O(_input.flood) V(true) (else no address would ever resolve); the requests then reach the
            peers, which answer themselves. The static tables stay either way.
        type: bool
        default: true
      encrypted:
        version_added: 0.3.0
        description:
          - The network's VXLAN rides inside WireGuard between the hosts. Every present host with an endpoint on an
            encrypted network gets a tunnel address from O(wireguard_subnet) (stable; see O(fleet)), and the
            network's C(peers), C(peer_hosts) keys and C(fdb) destinations are the peers' tunnel addresses.
          - Its MTU defaults to the underlay MTU minus WireGuard's overhead (60 over an IPv4 underlay, 80 over IPv6)
            and VXLAN's over the tunnel addresses (50 over IPv4, 70 over IPv6).
        type: bool
        default: false
  fleet:
    description:
      - Hostname -> host record, for every host of the fleet.
      - "A host record has the keys C(state) (V(present) or V(absent), default V(present)),
        C(reachable) (bool, default V(true)), C(vtep) (the host's underlay IPv4 or IPv6 address; required when
        the host has endpoints), C(underlay_mtu) (int or null for 1500), C(endpoints) (list) and C(current)
        (dict, from the host's facts; null when there are none)."
      - "An endpoint is a dict with C(name) (required; names its netns, so unique on the host: 1 to 64
        characters of C([A-Za-z0-9_.-]) not starting with C(.) or C(-)), C(network) (required, a network
        name), C(address) (optional bare IP or CIDR with the subnet's prefix length), C(mac) (optional
        unicast MAC, not the network's gateway MAC), C(mtu) (optional, at most the network's MTU), C(netns) (optional:
        an existing netns to join instead of creating one named after the endpoint; the same naming rule, not
        C(ovl-<vni>) nor the netns of another endpoint of the host) and C(interface) (optional, default C(eth0): the
        interface's name inside its netns, a Linux interface name other than C(lo); with or without C(netns)). Two
        endpoints in one netns have different interfaces and networks, and at most one egress network."
      - "C(current) maps an endpoint name to C({network, ip, mac, netns, attached}) as the host's kernel shows it
        (C(attached) true for an endpoint that joined a netns it did not create)."
      - "From the host's facts, optional: C(current_networks) (network name -> its netns), C(peers) (network name ->
        C({vtep: hostname or null}), the entries the host holds), C(netns) (every named netns of the host) and
        C(wireguard) (the facts' C(wireguard): C(public_key), C(public_key_next), C(address), C(port) and C(peers),
        each C({public_key, endpoint, allowed_ips})). A host keeps the tunnel address its C(wireguard) shows; one
        without facts keeps the address (and its public key is taken from) what its peers' C(wireguard.peers) show
        for its VTEP; the rest get the lowest free address, hosts in name order."
    type: dict
    required: true
  allow_purge:
    version_added: 0.2.0
    description: Let through a computation that empties a host or removes more than O(purge_limit) endpoints, and
      drop the entries held for hosts that are not in O(fleet).
    type: bool
    default: false
  purge_limit:
    version_added: 0.2.0
    description: The most endpoints that may be removed across the fleet (absent hosts aside).
    type: int
    default: 10
  forget_hosts:
    version_added: 0.2.0
    description: Hosts (names, or VTEP addresses) not in O(fleet) whose entries are dropped rather than kept.
    type: list
    elements: str
    default: []
  wireguard_port:
    version_added: 0.3.0
    description: The UDP port of every host's WireGuard interface; it must differ from the unencrypted networks' ports.
    type: int
    default: 51820
  wireguard_subnet:
    version_added: 0.3.0
    description: The tunnel addresses (IPv4 or IPv6); it must hold no host's VTEP and room for every host that needs
      one.
    type: str
    default: 10.255.0.0/16
  wireguard_rotate:
    version_added: 0.3.0
    description: The hosts of the run (reachable) that have a staged key (C(public_key_next)) switch to it
      (C(rotate)), and their peers get that key.
    type: bool
    default: false
"""

EXAMPLES = r"""
# group_vars/all:
#   overlay_networks:
#     - {name: overlay_network, vni: 256, subnet: 10.213.0.0/24}
- name: Compute the peer tables once for the whole fleet
  ansible.builtin.set_fact:
    fleet_peer_tables: "{{ overlay_networks | netfleet.overlay.peer_tables(fleet) }}"
  run_once: true
  vars:
    fleet:
      h1:
        vtep: 198.18.1.1
        underlay_mtu: 1500
        endpoints: [{name: hosta, network: overlay_network}]
      h2:
        vtep: 198.18.1.2
        endpoints: [{name: hostb, network: overlay_network}]
        current: {hostb: {network: overlay_network, ip: 10.213.0.3, mac: "02:42:0a:d5:00:03"}}

# fleet_peer_tables.h1.networks[0] =>
#   name: overlay_network
#   vni: 256
#   port: 4789
#   subnet: 10.213.0.0/24
#   prefixlen: 24
#   family: 4
#   mtu: 1450
#   netns: ovl-256
#   bridge: br0
#   vxlan: vxlan0
#   egress: false
#   dns: false
#   flood: false         # with flood: fdb starts with {mac: "00:00:00:00:00:00", dst: <vtep>} per peer VTEP
#   proxy: true
#   encrypted: false     # with encrypted: every VTEP below is a tunnel address, and the host gets its wireguard
#   gateway: null        # with egress or dns: {address: 10.213.0.1, prefixlen: 24, mac: "06:00:00:01:00:01"}
#   names: {}            # with dns: {hosta: 10.213.0.2, hosta.overlay_network: 10.213.0.2, hostb: ...}
#   endpoints:
#     - {name: hosta, netns: hosta, attached: false, ifname: eth0, veth: veth-hosta, ip: 10.213.0.2,
#        address: 10.213.0.2/24, mac: "02:42:0a:d5:00:02", mtu: 1450}
#   neigh: [{ip: 10.213.0.3, mac: "02:42:0a:d5:00:03"}]
#   fdb: [{mac: "02:42:0a:d5:00:03", dst: 198.18.1.2}]
#   peers: [198.18.1.2]
# fleet_peer_tables.h1.allowlist => [198.18.1.2]
# fleet_peer_tables.h1.ports => [4789]
# fleet_peer_tables.h1.wireguard => null  (with an encrypted network: {address: 10.255.0.1, prefixlen: 16,
#   port: 51820, mtu: 1440, rotate: false, peers: [{host: h2, public_key: ..., endpoint: "198.18.1.2:51820",
#   address: 10.255.0.2}]})
# fleet_peer_tables.h1.wireguard_allow => []

- name: Apply this host's part
  netfleet.overlay.fdb:
    netns: "{{ item.netns }}"
    dev: "{{ item.vxlan }}"
    entries: "{{ item.fdb }}"
    state: overridden
  loop: "{{ fleet_peer_tables[inventory_hostname].networks }}"
  when: not fleet_peer_tables[inventory_hostname].skip
"""

RETURN = """
_value:
  description:
    - Hostname -> record, for every host of O(fleet).
    - "A record has C(state), C(skip) (true for an unreachable host: do not touch it), C(vtep) (or null),
      C(networks), C(allowlist) (sorted remote VTEPs that may send VXLAN to this host, including preserved
      ones, of its unencrypted networks), C(ports) (sorted UDP ports of its unencrypted networks),
      C(preserve_vteps) (sorted VTEPs of unreachable hosts without facts that share a network with it; on an
      encrypted network, the VTEPs of those whose tunnel is known, and the host keeps the entries that point at
      their tunnel addresses), C(wireguard) and C(wireguard_allow)."
    - "C(wireguard) is null unless the host has an endpoint on an encrypted network. Then it is C(address) and
      C(prefixlen) (its tunnel address), C(port), C(mtu) (of C(wg-overlay): the underlay MTU minus 60, or 80 over
      IPv6), C(rotate) (true when it switches to its staged key in this run) and C(peers), sorted by tunnel address:
      C({host, public_key, endpoint, address}) of every host it shares an encrypted network with whose public key
      is known (C(endpoint) is the peer's VTEP and port). C(wireguard_allow) holds those peers' VTEPs, sorted: the
      only sources of UDP to the WireGuard port."
    - "C(networks) lists, sorted by VNI, only the networks the host has endpoints on (an absent or skipped
      host gets none): C(name), C(vni), C(port), C(subnet), C(prefixlen), C(family) (4 or 6), C(mtu),
      C(netns), C(bridge), C(vxlan), C(egress), C(dns), C(flood), C(proxy), C(encrypted), C(gateway)
      (C({address, prefixlen, mac}) with egress or dns, else null), C(names) (with dns, the names that the
      network's DNS serves on this host, C(<endpoint>) and C(<endpoint>.<network>) -> address for every endpoint of
      the network; else empty),
      C(endpoints) (the host's own, sorted by name: C(name), C(netns) (the attached one, or the endpoint's name),
      C(attached) (bool), C(ifname) (the interface inside the netns), C(veth), C(ip), C(address) as
      ip/prefixlen, C(mac), C(mtu)), C(neigh) (C({ip, mac}) of every remote endpoint, sorted by IP), C(fdb)
      (C({mac, dst}) of every remote endpoint, sorted by MAC; C(dst) is that endpoint's host VTEP; with flood,
      first the flood entries C({mac: 00:00:00:00:00:00, dst}), one for every peer VTEP and preserved VTEP of the
      network, sorted by address: the vxlan device has one FDB, in which the all-zero MAC is the one key with
      many destinations), C(peers) (sorted remote VTEPs on the network) and C(peer_hosts) (VTEP -> hostname,
      null when unknown, for its peers and its preserved VTEPs). On an encrypted network every VTEP of C(fdb),
      C(peers) and C(peer_hosts) is the tunnel address of that host instead."
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.netfleet.overlay.plugins.plugin_utils._filters import filter_errors
from ansible_collections.netfleet.overlay.plugins.plugin_utils.peer_tables import (
    PeerTableError,
    compute_peer_tables,
)

_ARGUMENTS = ("networks", "fleet")
_OPTIONS = ("allow_purge", "purge_limit", "forget_hosts", "wireguard_port", "wireguard_subnet", "wireguard_rotate")


@filter_errors("peer_tables", PeerTableError)
def _peer_tables(*args, **kwargs):
    """Check the filter's arguments, then run the pure computation."""
    if len(args) > len(_ARGUMENTS):
        raise AnsibleFilterError(f"peer_tables takes the networks and one fleet argument, got {len(args)} arguments")
    data = dict(zip(_ARGUMENTS, args, strict=False))
    options = {}
    for key, value in kwargs.items():
        if key in _OPTIONS:
            options[key] = value
            continue
        if key not in _ARGUMENTS:
            raise AnsibleFilterError(f"peer_tables: unknown argument {key!r} (allowed: fleet, {', '.join(_OPTIONS)})")
        if key in data:
            raise AnsibleFilterError(f"peer_tables: argument {key!r} is given twice")
        data[key] = value
    if "fleet" not in data:
        raise AnsibleFilterError("peer_tables: missing required argument 'fleet' (hostname -> host record)")
    return compute_peer_tables(data["networks"], data["fleet"], **options)


class FilterModule:
    """netfleet.overlay filters for the fleet-wide peer table."""

    def filters(self):
        return {"peer_tables": _peer_tables}
