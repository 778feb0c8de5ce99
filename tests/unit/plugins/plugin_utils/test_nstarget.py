# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The holder record of the nsenter connection: its format, and the refusals that need no second namespace."""

from __future__ import annotations

import os
import subprocess

import pytest

from ansible_collections.netfleet.overlay.plugins.plugin_utils import _nstarget as t


def test_record_round_trip_with_the_pid_first():
    text = t.record_of(os.getpid())
    assert text.split()[0] == str(os.getpid())  # `read pid _` and older readers still find the pid
    record = t.parse_record(text, "pidfile x")
    assert record["pid"] == os.getpid() and record["start"] == t.start_time(os.getpid())
    assert record["ns"] == t.controller_namespaces()


def test_start_time_is_field_22_even_with_a_paren_in_the_name():
    with open("/proc/self/stat") as f:
        assert t.start_time(os.getpid()) == int(f.read().rsplit(")", 1)[1].split()[19])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1234\n", r"pidfile x holds a bare pid, .* restart the lab"),
        ("", r"pidfile x does not hold a pid"),
        ("1 start=1", r"does not hold a pid"),
        ("abc start=1", r"does not hold a pid"),
        ("1234 start=5 nsdev=4 user=1", r"pidfile x is not a complete holder record: .* restart the lab"),
        ("1234 start=x nsdev=4 user=1 mnt=2 uts=3 ipc=4 net=5 pid=6", r"not a complete holder record"),
    ],
)
def test_bad_records_are_refused(text, message):
    with pytest.raises(t.TargetError, match=message):
        t.parse_record(text, "pidfile x")


def test_the_controller_itself_is_refused_and_no_descriptor_leaks():
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(t.TargetError, match=r"refusing me: it shares the controller's own mnt, uts, ipc, net, pid"):
        t.Target(os.getpid(), "me")
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_dead_pid_and_a_reused_pid_are_refused():
    dead = subprocess.Popen(["true"])
    dead.wait()
    with pytest.raises(t.TargetError, match=r"process is not running"):
        t.Target(dead.pid, "pid x")
    record = t.parse_record(t.record_of(os.getpid()), "x")
    record["start"] += 1
    with pytest.raises(t.TargetError, match=r"start time \d+ is not the recorded \d+, so the pid now belongs"):
        t.Target(os.getpid(), "pid y", record)
