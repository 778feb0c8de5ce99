# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation shared by the modules of netfleet.overlay."""

from __future__ import annotations


class ModuleDocFragment:
    # The netns option, common to every kernel-object module.
    DOCUMENTATION = r"""
options:
  netns:
    description:
      - Name of the network namespace (a file in C(/run/netns)) that holds the object.
      - Omit it to act in the namespace the module runs in (the host's own, on a real host).
      - The module never creates this namespace by accident; when it is missing the module fails and says so.
    type: str
requirements:
  - pyroute2 >= 0.9.1, < 0.10 on the managed host
  - Linux with the C(vxlan), C(bridge) and C(veth) drivers; root (CAP_NET_ADMIN)
"""

    # Attributes of every module of the collection.
    ATTRIBUTES = r"""
attributes:
  check_mode:
    support: full
    description: Reads the kernel state and returns the predicted C(after) state and C(commands), changing nothing.
  diff_mode:
    support: full
    description: Returns the C(before) and C(after) state as a diff.
  idempotent:
    support: full
    description: A second run with the same arguments reports no change.
"""

    # Options and behaviour of the table modules (neigh, fdb).
    TABLE = r"""
options:
  dev:
    description:
      - The device whose table is managed, for example C(vxlan0).
    type: str
    required: true
  state:
    description:
      - How O(entries) is applied, in the vocabulary of Ansible network resource modules.
      - V(merged) adds missing entries and corrects entries whose key is given. Nothing is removed.
      - V(replaced) makes every key that appears in O(entries) hold exactly the given entries.
      - V(overridden) makes the device's permanent entries exactly O(entries). Only permanent entries on O(dev) are
        ever removed; learned entries and other devices are never touched.
      - V(deleted) removes the given entries (a key alone removes every entry with that key), or every permanent
        entry on O(dev) when O(entries) is empty.
      - V(gathered) only reads; the permanent entries are returned in RV(gathered).
      - V(rendered) returns the commands for O(entries) in RV(rendered) without touching any host state.
    type: str
    default: merged
    choices: [merged, replaced, overridden, deleted, gathered, rendered]
  full_tables:
    description:
      - Also return the whole table before and after the run, in RV(before) and RV(after), as diff mode does.
      - By default the result holds only the counts and the changed entries (RV(counts), RV(changes),
        RV(commands)), so its size follows the changes and not the table, which may hold 100,000 entries.
    type: bool
    default: false
notes:
  - Entries are reconciled by key, in one read of the device's table; writes happen only outside check mode, deletes
    first.
  - In check mode RV(counts), RV(changes) and RV(commands) predict the real run; with diff mode or
    O(full_tables=true), RV(after) is the predicted table, equal to what a real run returns.
  - The entries are checked by the module in one pass, not field by field by Ansible; an error names the entry's
    index, its field and its value, before anything is read or changed.
  - The result's C(invocation) shows at most 100 entries; longer O(entries) are summarised there by their count.
"""

    # The host lock of the single-object and table modules (overlay_host and vtep_firewall take lock_timeout).
    # Only a note; Ansible wants options or attributes in every fragment, hence the empty options.
    HOST_LOCK = r"""
options: {}
notes:
  - Holds the host lock C(/run/netfleet-overlay/host.lock) (the exclusive C(flock) that
    M(netfleet.overlay.overlay_host) holds) while it reads and writes, so it never interleaves with a converge or
    another module run on the host. It waits at most 300 seconds for the lock, then fails naming the last holder.
"""

    # The lock_timeout option of overlay_host and vtep_firewall.
    LOCK_TIMEOUT = r"""
options:
  lock_timeout:
    description:
      - Seconds to wait for the host lock (C(flock) on C(/run/netfleet-overlay/host.lock)) when another run holds
        it; M(netfleet.overlay.overlay_host), M(netfleet.overlay.vtep_firewall) and the single-object modules all
        take it. The module then fails, naming the lock file and the last holder's pid.
    type: int
    default: 300
"""
