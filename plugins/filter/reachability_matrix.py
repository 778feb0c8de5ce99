# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``netfleet.overlay.reachability_matrix`` filter: docs and the FilterModule.

The logic lives in ``plugin_utils/reachability.py`` (pure, unit-tested on plain data).
"""

from __future__ import annotations

DOCUMENTATION = """
name: reachability_matrix
author: netfleet.overlay maintainers
version_added: 0.1.0
short_description: Judge the pings of an overlay fleet's functional test and draw the reachability matrix
description:
  - Takes the plan of R(netfleet.overlay.ping_plan,ansible_collections.netfleet.overlay.ping_plan_filter) and every
    host's ping output (lines C(src dst ip ok|fail)), compares every answer with its expectation (a reply exactly
    within a network) and draws a matrix for the terminal.
  - "Rows are the source endpoints, columns the destinations, numbered like the rows, with a bar between networks.
    C(✓) is a reply within a network, C(·) no reply across networks, C(✗) a wrong cell, C(?) a ping that did not
    run (also wrong) and C(-) the endpoint itself. The wrong cells are also listed one per line."
positional: _input, outputs
options:
  _input:
    description: The plan that R(netfleet.overlay.ping_plan,ansible_collections.netfleet.overlay.ping_plan_filter)
      returned.
    type: dict
    required: true
  outputs:
    description:
      - Hostname -> that host's ping output, either its stdout text or the registered result of the ping task.
      - A host that is missing (for example because it failed) leaves its cells C(?).
    type: dict
    required: true
  checks:
    description:
      - "Hostname -> that host's output of the egress and name checks that the plan's C(checks_stdin) lists, its
        stdout text or the registered result: lines C(egress src target ok|fail) and C(name src target
        address[,address...]|-) (V(-) when the name did not resolve)."
      - A check without an answer fails as not tested. The egress and names sections follow the matrix, one for
        each feature that some network has; an egress check without a target is reported as skipped.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Judge the pings on the controller
  ansible.builtin.set_fact:
    _matrix: >-
      {{ _plan | netfleet.overlay.reachability_matrix(dict(ansible_play_hosts
         | zip(ansible_play_hosts | map('extract', hostvars, '_pings')))) }}
  run_once: true

- name: Print it
  ansible.builtin.debug:
    msg: "{{ _matrix.text }}"
  run_once: true

- name: Fail on any wrong cell
  ansible.builtin.assert:
    that: _matrix.ok
    fail_msg: "{{ _matrix.wrong | length }} wrong cell(s), missing endpoints: {{ _matrix.missing }}"
  run_once: true
"""

RETURN = """
_value:
  description:
    - "C(ok): true when no cell is wrong and no declared endpoint is missing."
    - "C(text) and C(lines): the matrix with a legend and the wrong cells spelled out."
    - "C(wrong): C({src, dst, ip, expect, replied, why}) of every wrong cell (C(replied) is null when the ping
      did not run)."
    - "C(missing): declared endpoints that the facts did not show (from the plan)."
    - "C(counts): C(endpoints), C(pings) (answered), C(replies) and C(wrong)."
    - "C(egress) and C(names): C({networks, checks, wrong}) of each check (C(wrong): C({src, target, why})); egress
      also has C(target) and C(skipped) (why it did not run, or null), names C(unchecked) (the attached endpoints)."
    - "C(ok) is false also when an egress or name check failed."
  type: dict
"""

from ansible_collections.netfleet.overlay.plugins.plugin_utils._filters import filter_errors
from ansible_collections.netfleet.overlay.plugins.plugin_utils.reachability import (
    ReachabilityError,
    reachability_matrix,
)


@filter_errors("reachability_matrix", ReachabilityError)
def _reachability_matrix(ping_plan, outputs, checks=None):
    """Compare the ping and check outputs with the ping plan and draw the report."""
    return reachability_matrix(ping_plan, outputs, checks)


class FilterModule:
    """netfleet.overlay filter that judges the fleet's functional test."""

    def filters(self):
        return {"reachability_matrix": _reachability_matrix}
