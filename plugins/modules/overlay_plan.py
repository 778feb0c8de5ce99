#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This module is implemented as an action plugin (plugins/action/overlay_plan.py): it runs on the controller.

from __future__ import annotations

DOCUMENTATION = r"""
module: overlay_plan
short_description: Compute the whole fleet's overlay once, on the controller
version_added: 0.1.0
description:
  - Reads, for every host of the fleet group, its C(overlay_state), C(overlay_vtep) and C(overlay_endpoints) and the
    facts that M(netfleet.overlay.overlay_facts) left (C(ansible_facts.netfleet_overlay)), in Python, in one pass
    over C(hostvars); then computes the fleet's overlay, IPAM, MACs, MTUs and peer tables included, as the
    R(netfleet.overlay.peer_tables,ansible_collections.netfleet.overlay.peer_tables_filter) filter does.
  - Returns it as a compact plan whose size is linear in the number of endpoints. Each network lists its endpoints
    once, rather than once per host that needs them. Each host then expands its own part with the
    R(netfleet.overlay.host_tables,ansible_collections.netfleet.overlay.host_tables_filter) filter, so the work and
    the memory of the controller grow linearly with the fleet.
  - Run it once per play (C(run_once=true)) and C(register) the result; every host of the play then sees it.
  - For the hosts of O(active_hosts) the facts' C(desired) (the C(overlay_state) and C(overlay_networks) that
    M(netfleet.overlay.overlay_facts) was given) win over their variables, because C(hostvars) cannot see play vars
    or role parameters. Every present one of them must have been given the same networks as O(networks).
  - Hosts of the fleet outside O(active_hosts) (outside the play or the C(--limit), or unreachable) are never treated
    as gone. Their endpoints stay in the other hosts' tables as their (cached) facts show them. Without facts, the
    other hosts keep whatever points at their VTEP.
  - Fails, naming the host and the value, on bad input, on a host of O(active_hosts) outside the fleet group, and on
    a present host whose facts show that its VTEP is not one of its addresses. Nothing is changed on any host.
  - "Guards, all checked before any host is changed. Each refusal says how to do what was probably meant."
  - "Unknown variables: a host or group variable (or extra var) of any host of the fleet group whose name starts
    with C(overlay_) and that the collection does not read fails, naming the host, the variable and the closest
    known name. An unknown key of a network or an endpoint fails the same way, with the closest known key."
  - "The purge guard: a run that would remove a host's whole overlay (its facts show endpoints and it would have
    none), or more than O(purge_limit) endpoints across the fleet, fails listing what would go, by host and name,
    also in check mode. Hosts that are torn down (C(overlay_state=absent)) do not count. O(allow_purge) lets such a
    run through; in diff mode the result then shows what goes."
  - "Vanished hosts: when a host of O(active_hosts) holds entries (per its facts' C(peers)) for a VTEP whose host is
    no longer in the fleet group, those entries are kept (the VTEP is preserved on that network) and a warning
    names the host, or its VTEP when its name is not recorded. This makes sliced jobs and partial inventories safe.
    O(forget_hosts) or O(allow_purge) removes them."
  - "No takeover: a netns that the plan would use on a host (an endpoint's, or C(ovl-<vni>)) that exists there
    (per the facts' C(netns)) but that the collection did not create fails the run, naming the host and the netns.
    Hosts whose facts do not list their netns (an older release's) are not checked. An endpoint's C(netns) (the
    netns it joins) must exist there, and not be one that the collection created."
  - "Values: network names follow the endpoint naming rule; a network C(mtu) larger than a host's underlay MTU
    minus the VXLAN overhead fails, naming the host, the network and the largest MTU that fits; subnets of two
    networks must not overlap; two endpoints of a network with one MAC (given twice, or given and derived) fail,
    naming both, their hosts and where each MAC comes from."
  - "Encrypted networks (C(encrypted=true)): every present host with an endpoint on one gets a tunnel address from
    O(wireguard_subnet), stable across runs (the address its facts show, else the one its peers' facts show for its
    VTEP, else the lowest free one, hosts in name order; never the subnet's first or last address, nor one that
    hosts still hold for a host outside the fleet group). Its WireGuard peers are the hosts it shares an encrypted
    network with, with the public keys their facts show (or that M(netfleet.overlay.wireguard_key) returned in this
    run, registered as C(_overlay_wireguard_key)); a peer whose key is not known is left out, with a warning. With
    O(wireguard_rotate), the hosts of the run that staged a key get C(rotate) and their peers get the staged key.
    The subnet must hold no host's VTEP and room for every such host, and O(wireguard_port) must differ from every
    unencrypted network's port; the run fails otherwise, naming the host or the value."
  - "Moves: an endpoint that the facts of a host of this run show on a network, and that another host of this run
    (which does not have it yet) now declares on that network with the same name and address, moves. Without an
    explicit address it keeps the address it had, when nothing else has it by now. The plan lists the run's moves
    (C(moves)) so that the run can be ordered make-before-break."
author:
  - netfleet.overlay maintainers (@netfleet)
attributes:
  check_mode:
    support: full
    description: Computes the same plan in check mode; it never changes anything.
  diff_mode:
    support: full
    description: Changes nothing itself. In diff mode it shows the endpoints and networks that the run removes, by
      host and name, and then reports C(changed) (callbacks show only the diffs of changed results).
  platform:
    support: full
    platforms: all
    description: Runs on the controller only; nothing runs on the hosts.
options:
  networks:
    description:
      - The fleet's overlay networks (C(overlay_networks)), each with C(name), C(vni) and C(subnet), and optionally
        C(port), C(mtu), C(egress), C(dns), C(flood), C(proxy) and C(encrypted), as the role
        M(netfleet.overlay.overlay) documents them. C(proxy=false) without C(flood=true) fails, naming the network.
    type: list
    elements: dict
    required: true
  fleet_group:
    description: The inventory group whose hosts form the fleet.
    type: str
    default: all
  active_hosts:
    description:
      - The hosts that this run reaches and converges.
      - Defaults to C(ansible_play_batch), the hosts of the play that are still running.
    type: list
    elements: str
  allow_purge:
    version_added: 0.2.0
    description:
      - Let through a run that would remove a host's whole overlay or more than O(purge_limit) endpoints.
      - Also removes the entries that hosts hold for hosts that are no longer in the fleet group.
    type: bool
    default: false
  purge_limit:
    version_added: 0.2.0
    description: The most endpoints that one run may remove across the fleet without O(allow_purge), absent hosts
      aside.
    type: int
    default: 10
  forget_hosts:
    version_added: 0.2.0
    description:
      - Hosts that were decommissioned on purpose, by name, or by VTEP address when their name is not recorded. The
        entries that the hosts of the run hold for them are removed.
    type: list
    elements: str
    default: []
  wireguard_port:
    version_added: 0.3.0
    description:
      - The UDP port of every host's WireGuard interface (C(overlay_wireguard_port)). Null means 51820.
      - Checked only for its form unless a network is encrypted.
    type: raw
  wireguard_subnet:
    version_added: 0.3.0
    description:
      - The tunnel addresses of the hosts of encrypted networks (C(overlay_wireguard_subnet)), IPv4 or IPv6 in CIDR
        form. Null means C(10.255.0.0/16).
    type: raw
  wireguard_rotate:
    version_added: 0.3.0
    description:
      - Rotate the WireGuard keys in this run (C(overlay_wireguard_rotate)). A boolean, or text that Ansible reads
        as one.
    type: raw
    default: false
seealso:
  - module: netfleet.overlay.overlay_facts
  - module: netfleet.overlay.overlay_host
  - plugin: netfleet.overlay.host_tables
    plugin_type: filter
    description: Expand one host's part of the plan.
"""

EXAMPLES = r"""
- name: Read every host's overlay state, recording what it is to converge to
  netfleet.overlay.overlay_facts:
    vtep: "{{ overlay_vtep | default(omit, true) }}"
    desired:
      state: "{{ overlay_state }}"
      networks: "{{ overlay_networks }}"

- name: Compute the whole fleet's overlay once
  netfleet.overlay.overlay_plan:
    networks: "{{ overlay_networks }}"
    fleet_group: all
    allow_purge: "{{ overlay_allow_purge | default(false) | bool }}"
  run_once: true
  register: fleet_plan

- name: Converge each host with its part
  netfleet.overlay.overlay_host:
    vtep: "{{ _mine.vtep | default(omit, true) }}"
    state: "{{ _mine.state }}"
    networks: "{{ _mine.networks }}"
    preserve_vteps: "{{ _mine.preserve_vteps }}"
  vars:
    _mine: "{{ fleet_plan.plan | netfleet.overlay.host_tables(inventory_hostname) }}"
"""

RETURN = r"""
plan:
  description:
    - The fleet's overlay. Pass it to the
      R(netfleet.overlay.host_tables,ansible_collections.netfleet.overlay.host_tables_filter) filter; its layout may
      change between releases.
    - "C(networks): network name -> C(name), C(vni), C(port), C(subnet), C(prefixlen), C(family), C(netns),
      C(bridge), C(vxlan), C(egress), C(dns), C(flood), C(proxy), C(gateway) (C({address, prefixlen, mac}) with
      egress or dns, else null; the same on every host), C(names) (with dns, C([endpoint, ip]) of every endpoint,
      by name; else empty), C(neigh) (C([ip, mac, host]) of every endpoint, by IP), C(fdb) (C([mac, vtep, host]),
      by MAC), C(vteps) (the VTEPs of its endpoints' hosts), C(hosts) (their names), C(preserve) (VTEPs to leave alone)
      and C(preserve_hosts) (their names, null when not known). A network with C(flood) has no list per host: each
      host's flood list is its C(vteps) and C(preserve) without the host's own VTEP, which the filter expands. An
      encrypted network also has C(encrypted) (true; absent on the others), and its C(vteps), C(fdb) destinations
      and C(preserve) are the hosts' tunnel addresses."
    - "C(hosts): hostname -> C(state), C(skip), C(vtep) and C(networks) (by VNI: C(name), C(mtu) and its own
      C(endpoints), each with C(name), C(netns), C(attached), C(ifname), C(veth), C(ip), C(address), C(mac) and
      C(mtu))."
    - "C(wireguard): only when a network is encrypted. C(port), C(subnet), C(prefixlen), C(family) and C(hosts):
      hostname (or the tunnel address of a kept host whose name is not recorded) -> C(address) (its tunnel address),
      C(public_key) (null when not known), C(vtep), C(port), C(endpoint) (C(vtep:port)), C(mtu) (of C(wg-overlay))
      and C(rotate), packed as one JSON string per host. Its VTEPs and public keys only: no private key ever reaches
      the controller."
    - "C(moves): the endpoints that move between hosts in this run, sorted by network, then endpoint, each a dict
      with C(endpoint), C(network), C(ip), C(mac) (what it has on its new host), C(from) and C(to) (the hosts).
      Empty in a run without moves. They give the order of a make-before-break run: first the C(to) hosts build
      the endpoints, then every peer switches its entries to the new VTEP, then the C(from) hosts remove them
      (they are also in C(removed))."
  returned: success
  type: dict
  sample:
    version: 1
    networks:
      overlay_network:
        name: overlay_network
        vni: 256
        port: 4789
        subnet: 10.213.0.0/24
        prefixlen: 24
        family: 4
        netns: ovl-256
        bridge: br0
        vxlan: vxlan0
        egress: false
        dns: false
        flood: false
        proxy: true
        gateway: null
        names: []
        neigh: [["10.213.0.2", "02:42:0a:d5:00:02", h1], ["10.213.0.3", "02:42:0a:d5:00:03", h2]]
        fdb: [["02:42:0a:d5:00:02", 198.18.1.1, h1], ["02:42:0a:d5:00:03", 198.18.1.2, h2]]
        vteps: [198.18.1.1, 198.18.1.2]
        hosts: [h1, h2]
        preserve: []
        preserve_hosts: []
    hosts:
      h1:
        state: present
        skip: false
        vtep: 198.18.1.1
        networks:
          - name: overlay_network
            mtu: 1450
            endpoints: [{name: hosta, netns: hosta, attached: false, ifname: eth0, veth: veth-hosta,
                         ip: 10.213.0.2, address: 10.213.0.2/24, mac: "02:42:0a:d5:00:02", mtu: 1450}]
    moves: [{endpoint: web, network: overlay_network, ip: 10.213.0.7, mac: "02:42:0a:d5:00:07", from: h2, to: h1}]
removed:
  description:
    - What the run removes from the hosts it converges, per their facts, by host. C(state) is the host's; absent
      hosts' removals do not count for the purge guard.
  returned: success
  type: dict
  sample: {h2: {state: present, endpoints: [web2], networks: [backend]}}
kept:
  description:
    - The hosts that are no longer in the fleet group whose entries are kept, each with C(host) (null when its name
      is not recorded), C(vtep), C(networks) and C(held_by) (the hosts that hold them). A warning names each one.
  returned: success
  type: list
  elements: dict
  sample: [{host: h3, vtep: 198.18.1.3, networks: [overlay_network], held_by: [h1, h2]}]
summary:
  description:
    - Counts over the whole fleet (the entries are what the hosts' tables will hold, summed).
    - C(flood) counts the flood entries among the C(fdb) entries; C(moves) the endpoints that move between hosts
      in this run (the plan's C(moves)).
  returned: success
  type: dict
  sample: {hosts: 3, hosts_present: 3, hosts_absent: 0, hosts_skipped: 0, networks: 2, endpoints: 5, neigh: 8, fdb: 12,
           flood: 4, moves: 1}
"""
