# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every filter fails on bad input with Ansible's error, its engine's message and the filter's name in front."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.netfleet.overlay.plugins.filter import (
    fleet_records,
    host_tables,
    peer_tables,
    ping_plan,
    reachability_matrix,
    topology_dot,
)


def _filter(module, name):
    return module.FilterModule().filters()[name]


@pytest.mark.parametrize(
    ("module", "name", "args", "kwargs", "message"),
    [
        (
            ping_plan,
            "ping_plan",
            ([], ["h1"]),
            {},
            "ping_plan: the input must be hostvars (hostname -> variables), got list",
        ),
        (ping_plan, "ping_plan", ({"h1": {}}, "h1"), {}, "ping_plan: hosts must be a list of hostnames"),
        (ping_plan, "ping_plan", ({"h1": {}}, ["h9"]), {}, "ping_plan: hosts: host h9 has no variables in hostvars"),
        (
            topology_dot,
            "topology_dot",
            ({"h1": {}}, ["h1"]),
            {"title": 5},
            "topology_dot: title must be a string, got int",
        ),
        (topology_dot, "topology_dot", ({"h1": {}}, ["h9"]), {}, "topology_dot: hosts: host h9 has no variables"),
        (host_tables, "host_tables", ({}, ""), {}, "host_tables: the host must be a hostname, got ''"),
        (
            host_tables,
            "host_tables",
            ({}, "h1"),
            {},
            "host_tables: the plan must be what netfleet.overlay.overlay_plan",
        ),
        (reachability_matrix, "reachability_matrix", ({}, {}), {}, "reachability_matrix: the ping plan must be what"),
        (
            fleet_records,
            "fleet_records",
            ([],),
            {"fleet_hosts": [], "active_hosts": []},
            "fleet_records: the input must",
        ),
        (fleet_records, "fleet_records", ({},), {"fleet_host": []}, "fleet_records: unknown argument 'fleet_host'"),
        (peer_tables, "peer_tables", ("x",), {"fleet": {}}, "peer_tables: overlay_networks must be a list"),
    ],
)
def test_bad_input_names_the_filter(module, name, args, kwargs, message):
    with pytest.raises(AnsibleFilterError) as failed:
        _filter(module, name)(*args, **kwargs)
    assert str(failed.value.message).startswith(message), failed.value.message
