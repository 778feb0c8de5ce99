#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: overlay_facts
short_description: Read one host's overlay state
version_added: 0.1.0
description:
  - Returns C(ansible_facts.netfleet_overlay) for one host. That is its VTEP address, the underlay interface and MTU,
    the kernel and what it supports, and every overlay network and endpoint that this collection created on the
    host, with the IP and MAC actually in the kernel.
  - What the collection owns is read from its ownership record, C(/run/netfleet-overlay/ownership.json), which
    M(netfleet.overlay.overlay_host) writes, and looked for only where the collection builds (a network's overlay
    netns, and an endpoint's netns, whose interface must be the peer of the endpoint's veth in the overlay netns).
    Interface aliases are never trusted. A record that cannot be read, or that is not what the collection writes,
    fails the module with a message naming the file, the field and the value.
  - On a host that release 0.1.0 converged (no record yet), the networks and endpoints are read from the aliases
    0.1.0 wrote, only inside namespaces named C(ovl-<vni>), as M(netfleet.overlay.overlay_host) takes them over.
    An alias that is not adopted (not UTF-8, not a valid name, a veth whose peer is elsewhere) is named in a warning.
  - C(peers) maps each owned network to the remote VTEPs whose FDB entries the host holds, and the host each one
    belongs to (null when unknown; always null on a 0.1.0 host, read from the permanent FDB entries).
  - C(netns) lists every named netns of the host (C(ip netns list)), owned or not, so the controller can refuse
    a plan that would take over a namespace that the collection did not make.
  - C(nft) is the path of the C(nft) binary, or null when it is not installed (the VTEP allowlist needs it).
  - C(dnsmasq) is the path of the C(dnsmasq) binary, or null when it is not installed (the DNS server of a network
    with C(dns) needs it).
  - C(firewall) says whether the VTEP allowlist, C(table inet netfleet_overlay), is on the host (C(present)), and
    whether it is exactly the table this release writes for the VTEP, allowlist and ports it holds (C(intact));
    null without C(nft), or when nft cannot read it (a warning says why). After C(nft flush ruleset) (a reload of
    Debian's C(nftables.service) does that) it is not present until the next converge puts it back.
  - Reads the kernel over raw netlink and never needs or imports pyroute2 (only the modules that write use it).
    C(pyroute2) says whether pyroute2 is installed for the Python that runs the modules, that is whether its
    package is found where that Python imports from (it is not imported here, so a broken install shows up at
    the first write), so a preflight check can say what to install.
  - C(wg) is the path of the C(wg) binary (wireguard-tools), or null when it is not installed (an encrypted network
    needs it).
  - C(wireguard) describes the WireGuard tunnel of encrypted networks. C(implementation) is V(kernel) or
    V(userspace) (wireguard-go), the one in use or else the one a run would use, or null when neither is there.
    C(public_key) and C(public_key_next) are the public keys of the host's key and of a staged rotation key (null
    when there is none). C(address) is the tunnel address on C(wg-overlay) in the namespace C(ovl-wg), C(port) its
    UDP port, and C(peers) the peers it holds (C(public_key), C(endpoint), C(allowed_ips)); null and empty without
    the interface. A private key is never reported.
  - C(pyroute2_version) is the version of the installed pyroute2 distribution, read from its package metadata (so
    also when it is too old to import), or null when there is none.
author:
  - netfleet.overlay maintainers (@netfleet)
attributes:
  check_mode:
    support: full
    description: The module only reads; it runs the same in check mode.
  diff_mode:
    support: none
    description: It changes nothing, so there is no diff.
  facts:
    support: full
    description: Returns facts under C(ansible_facts.netfleet_overlay); they are cached by a fact cache.
options:
  vtep:
    description:
      - The host's VTEP address. When omitted, the first address of the interface that carries the default route
        (IPv4 first, then IPv6).
    type: str
  desired:
    description:
      - What this host is to converge to in this run, recorded unchanged as C(desired) in the facts.
      - C(hostvars) cannot see play vars or role parameters, so a fleet-wide computation on the controller
        (M(netfleet.overlay.overlay_plan)) reads each host's effective C(overlay_state) and C(overlay_networks) here.
      - The module itself changes nothing and checks nothing with it.
    type: dict
    suboptions:
      state:
        description: The host's C(overlay_state).
        type: str
        choices: [present, absent]
        default: present
      networks:
        description: The C(overlay_networks) the host was given.
        type: list
        elements: dict
        default: []
  requirements:
    description:
      - What the host needs for the overlay. The facts then list what it lacks as C(unmet), codes in the order a
        user fixes them, which the role's preflight turns into a message saying what to install.
      - The codes are C(pyroute2_missing), C(pyroute2_version), C(pyroute2_import) (metadata found but not the
        package), and, for a host whose O(desired.state) is V(present), C(nft), C(dnsmasq), C(kernel), C(vxlan) (no
        vxlan driver), C(vtep) (no VTEP, that is neither O(vtep) nor an address on the default route's interface) and
        C(wireguard_missing) (O(requirements.wireguard) and no C(wg), or neither the kernel's WireGuard nor
        C(wireguard-go)).
      - The module never fails for an unmet requirement; it only reports it.
    type: dict
    suboptions:
      pyroute2:
        description: The pyroute2 versions the modules support, for example V(>=0.9.1,<0.10).
        type: str
      kernel:
        description: The oldest kernel release, for example V(3.10).
        type: str
      nft:
        description: Whether C(nft) is needed (for the VTEP allowlist).
        type: bool
        default: false
      dnsmasq:
        description: Whether C(dnsmasq) is needed (the host has a network with C(dns)).
        type: bool
        default: false
      wireguard:
        description: Whether WireGuard is needed (the host has an endpoint on an encrypted network).
        type: bool
        default: false
"""

EXAMPLES = r"""
- name: Read the overlay state of every host
  netfleet.overlay.overlay_facts:
    vtep: "{{ overlay_vtep | default(omit) }}"

- name: Read the overlay state and record what the host was given, for netfleet.overlay.overlay_plan
  netfleet.overlay.overlay_facts:
    desired:
      state: "{{ overlay_state }}"
      networks: "{{ overlay_networks }}"

- name: Show the endpoints
  ansible.builtin.debug:
    var: ansible_facts.netfleet_overlay.endpoints
"""

RETURN = r"""
ansible_facts:
  description: Facts under C(netfleet_overlay).
  returned: always
  type: dict
  contains:
    netfleet_overlay:
      description:
        - The host's overlay state.
        - C(endpoints) maps each endpoint that netfleet.overlay owns on the host to its kernel state; C(attached)
          is V(true) for one that joined a netns of the user's (the endpoint's C(netns)), where the collection owns
          only the veth, and V(false) for one in a netns that the collection created (C(netns_created)).
      type: dict
      returned: always
      sample:
        vtep: 198.18.1.1
        vtep_dev: eth0
        vtep_is_local: true
        underlay_mtu: 1500
        pyroute2: true
        pyroute2_version: "0.9.7"
        nft: /usr/sbin/nft
        dnsmasq: /usr/sbin/dnsmasq
        wg: /usr/bin/wg
        wireguard: {implementation: userspace, public_key: "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
                    public_key_next: null, address: 10.255.0.1, port: 51820,
                    peers: [{public_key: "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=", endpoint: "198.18.1.2:51820",
                             allowed_ips: [10.255.0.2/32]}]}
        firewall: {present: true, intact: true, vtep: 198.18.1.1, allow: [198.18.1.2, 198.18.1.3], ports: [4789]}
        kernel: {release: 6.1.0-18-amd64, version: [6, 1], vxlan: true}
        networks:
          overlay_network: {name: overlay_network, netns: ovl-256, vni: 256, port: 4789, local: 198.18.1.1,
                            learning: false, proxy: true, mtu: 1450, vxlan: vxlan0, bridge: br0, bridge_mtu: 1450}
        endpoints:
          hosta: {name: hosta, netns: hosta, network: overlay_network, ip: 10.213.0.2, prefixlen: 24,
                  mac: "02:42:0a:d5:00:02", mtu: 1450, veth: veth-hosta, overlay_netns: ovl-256, ifname: eth0,
                  netns_created: true, attached: false}
          app1: {name: app1, netns: app1, network: overlay_network, ip: 10.213.0.50, prefixlen: 24,
                 mac: "02:42:0a:d5:00:32", mtu: 1450, veth: veth-app1, overlay_netns: ovl-256, ifname: ovl0,
                 netns_created: false, attached: true}
        peers:
          overlay_network: {198.18.1.2: h2, 198.18.1.3: h3}
        netns: [app1, hosta, ovl-256]
        desired:
          state: present
          networks: [{name: overlay_network, vni: 256, subnet: 10.213.0.0/24}]
        unmet: []
"""

import os
import sys

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netfleet.overlay.plugins.module_utils import (
    _discover,
    _dns,
    _firewall,
    _records,
    _requirements,
    _wireguard,
)
from ansible_collections.netfleet.overlay.plugins.module_utils import _validate as v
from ansible_collections.netfleet.overlay.plugins.module_utils._module import run
from ansible_collections.netfleet.overlay.plugins.module_utils._objects import Handles
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl import namespace as nl


def _pyroute2_version():
    """The installed pyroute2's version from its metadata directory, or None; the preflight compares it with the
    range.

    The first ``pyroute2-<version>.dist-info`` (or ``.egg-info``) on ``sys.path`` is the one Python imports
    from. A directory scan, because importing ``importlib.metadata`` costs more than this module's other reads.
    """
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.startswith("pyroute2-") and name.endswith((".dist-info", ".egg-info")):
                return name[len("pyroute2-") :].rsplit(".", 1)[0].split("-py")[0]
    return None


def gather(module) -> dict:
    """The host's facts (the module's work for :func:`._module.run`); reads only."""
    p = module.params
    vtep = v.ip(p["vtep"], "vtep") if p["vtep"] else None
    facts = {"kernel": _discover.kernel_info(), "pyroute2": nl.HAS_PYROUTE2, "networks": {}, "endpoints": {}}
    facts["pyroute2_version"] = _pyroute2_version()
    facts["nft"] = _discover.nft_binary()
    facts["dnsmasq"] = _dns.binary()
    facts["wg"] = _wireguard.wg_binary()
    warnings: list[str] = []
    try:
        facts["wireguard"] = _wireguard.facts(module.run_command, no_log_values=module.no_log_values)
    except _wireguard.WireGuardError as exc:  # e.g. wg cannot read the interface: the rest of the facts stand
        facts["wireguard"] = dict(_wireguard.EMPTY_FACTS)
        warnings.append(f"wireguard: {exc}")
    try:
        facts["firewall"] = _firewall.status(_firewall.Nft(module.run_command, facts["nft"])) if facts["nft"] else None
    except _firewall.FirewallError as exc:  # e.g. no nf_tables in the kernel: only the allowlist needs it
        facts["firewall"] = None
        warnings.append(str(exc))
    record = _records.load()
    with Handles() as handles:
        facts.update(_discover.underlay(handles(None), vtep))
        if record is None:  # none yet: what release 0.1.0 made, if anything
            record = _discover.adopt_legacy(handles, warnings)
            facts["peers"] = _discover.legacy_peers(handles, record)
        else:
            facts["peers"] = record["peers"]
        facts.update(_discover.owned(handles, record))
    facts["netns"] = _discover.netns_names()
    if p["desired"] is not None:
        facts["desired"] = p["desired"]
    if p["requirements"] is not None:
        state = (p["desired"] or {}).get("state", "present")
        try:
            facts["unmet"] = _requirements.unmet(facts, p["requirements"], state)
        except ValueError as exc:
            raise v.InputError(f"requirements: {exc}") from None
    return {"changed": False, "ansible_facts": {"netfleet_overlay": facts}, "warnings": warnings}


def main():
    requirements = {
        "pyroute2": {"type": "str"},
        "kernel": {"type": "str"},
        "nft": {"type": "bool", "default": False},
        "dnsmasq": {"type": "bool", "default": False},
        "wireguard": {"type": "bool", "default": False},
    }
    desired = {
        "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        "networks": {"type": "list", "elements": "dict", "default": []},
    }
    module = AnsibleModule(
        argument_spec={
            "vtep": {"type": "str"},
            "desired": {"type": "dict", "options": desired},
            "requirements": {"type": "dict", "options": requirements},
        },
        supports_check_mode=True,
    )
    run(module, gather, pyroute2=False)


if __name__ == "__main__":
    main()
