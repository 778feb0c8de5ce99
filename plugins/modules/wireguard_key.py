#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: wireguard_key
short_description: Make a host's WireGuard key pair for encrypted networks, and stage a rotation key
version_added: 0.3.0
description:
  - Makes the host's WireGuard private key, C(/run/netfleet-overlay/wireguard/private.key), with C(wg genkey) the
    first time, and returns its public key. The private key is made on the host and never leaves it. It is in no
    result, command line, warning or log, and the file has mode 0600 in a directory of mode 0700.
  - The state directory is a tmpfs (C(/run)), so the private key is never written to persistent storage. After a
    reboot the next run makes a new key pair, and the same run gives the peers its public key.
  - With O(rotate=true) it also stages a new key, C(next.key), when none is staged, and returns its public key as
    RV(public_key_next). M(netfleet.overlay.overlay_host) with C(wireguard.rotate) then switches the interface to it
    and makes it the host's key.
  - The role C(netfleet.overlay.overlay) runs it on the hosts that have an endpoint on an encrypted network. The
    tunnel itself (C(wg-overlay) in the namespace C(ovl-wg)) is made by M(netfleet.overlay.overlay_host).
author:
  - netfleet.overlay maintainers (@netfleet)
attributes:
  check_mode:
    support: full
    description: Predicts whether a key would be made; a key that would be made has no public key yet (null).
  diff_mode:
    support: none
    description: Keys are never shown, so there is no diff.
  idempotent:
    support: full
    description: A second run with the same arguments reports no change.
options:
  state:
    description:
      - V(present) makes the key pair when there is none.
      - V(absent) removes the private key and a staged rotation key (the tunnel is M(netfleet.overlay.overlay_host)'s
        to remove).
    type: str
    choices: [present, absent]
    default: present
  rotate:
    description:
      - Stage a new key, C(next.key), when none is staged yet (a staged key is kept, so a run that failed part-way
        and is run again distributes the same next key).
    type: bool
    default: false
requirements:
  - wireguard-tools (C(wg)) on the managed host
"""

EXAMPLES = r"""
- name: Make the host's WireGuard key pair
  netfleet.overlay.wireguard_key:
  register: wg_key

- name: Stage a rotation key; overlay_host with wireguard.rotate switches to it
  netfleet.overlay.wireguard_key:
    rotate: true
"""

RETURN = r"""
public_key:
  description: The public key of the host's private key (null when there is none, or in check mode before it is made).
  returned: always
  type: str
  sample: "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
public_key_next:
  description: The public key of the staged rotation key, or null when none is staged.
  returned: always
  type: str
  sample: null
commands:
  description: What the run did (or, in check mode, would do); file names only, never a key.
  returned: always
  type: list
  elements: str
  sample: ["wg genkey > /run/netfleet-overlay/wireguard/private.key"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netfleet.overlay.plugins.module_utils import _lock, _wireguard
from ansible_collections.netfleet.overlay.plugins.module_utils._module import run


def work(module) -> dict:
    with _lock.host_lock():
        return _wireguard.key_state(
            module.run_command,
            state=module.params["state"],
            rotate=module.params["rotate"],
            check_mode=module.check_mode,
            no_log_values=module.no_log_values,
        )


def main():
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "rotate": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    run(module, work, pyroute2=False)


if __name__ == "__main__":
    main()
