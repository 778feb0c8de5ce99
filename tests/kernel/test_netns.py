# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""netfleet.overlay.netns through Ansible: check, apply, check, apply for present and absent."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.kernel


def test_netns_present_then_absent(lab, nf):
    host = lab.netns("h")
    name = lab.name("n1")
    never = lab.name("never")
    gone = {"name": never, "state": "absent"}
    present, absent = nf.four_steps(
        host,
        [("netns", {"name": name}), ("netns", {"name": name, "state": "absent"})],
        [name],
    )

    nf.assert_four_steps(present)
    assert present["snap_before"][name] is None
    assert present["check"]["before"] == {}
    assert present["check"]["after"] == {"name": name}
    assert present["check"]["commands"] == [f"ip netns add {name}"]
    assert present["apply"]["after"] == {"name": name}
    # the namespace exists and is usable: iproute2 lists its loopback
    assert "lo" in present["snap_after_apply"][name]["links"]

    nf.assert_four_steps(absent)
    assert absent["check"]["before"] == {"name": name}
    assert absent["check"]["after"] == {}
    assert absent["check"]["commands"] == [f"ip netns del {name}"]
    assert absent["snap_after_apply"][name] is None
    assert not nf.netns_exists(name)

    # absent when already absent: nothing to do, in check mode or not
    for r in nf.run_tasks(host, [nf.Call("netns", gone, check=True), nf.Call("netns", gone)]):
        nf.assert_ok(r)
        assert r["changed"] is False
        assert r["commands"] == []
    assert not nf.netns_exists(never)
