# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ownership record: hostile names round-trip, versions, and a bad record is a clear error, never a traceback.

Files go to a private 0700 directory under pytest's tmp_path, never to the machine's /run.
"""

from __future__ import annotations

import json
import os
import re

import pytest

from ansible_collections.netfleet.overlay.plugins.module_utils import _records
from ansible_collections.netfleet.overlay.plugins.module_utils._validate import InputError

HOSTILE = ["my front end", 'say "hi"', "a=b", "it's", "x  y", "netfleet.overlay network=evil", "név ünicode"]


def record(*names: str) -> dict:
    out = _records.empty()
    for i, name in enumerate(names):
        out["networks"][name] = {"netns": f"ovl-{300 + i}", "vni": 300 + i, "bridge": "br0", "vxlan": "vxlan0"}
        out["endpoints"][name] = {
            "network": name,
            "netns": f"ep{i}",
            "veth": f"veth-ep{i}",
            "ifname": "eth0",
            "netns_created": True,
        }
        out["peers"][name] = {"198.18.1.2": name, "2001:db8::2": None}
    return out


@pytest.fixture
def state_dir(tmp_path):
    path = tmp_path / "state"
    path.mkdir(mode=0o700)
    return str(path)


def test_hostile_names_round_trip_through_the_file(state_dir):
    wanted = record(*HOSTILE)
    _records.save(wanted, state_dir)
    assert _records.load(state_dir) == wanted
    mode = os.stat(_records.path(state_dir)).st_mode & 0o777
    assert mode == 0o600


def test_no_record_and_no_directory_is_none_and_creates_nothing(tmp_path):
    missing = tmp_path / "absent"
    assert _records.load(str(missing)) is None
    assert not missing.exists()


def test_empty_directory_is_no_record(state_dir):
    assert _records.load(state_dir) is None


def test_values_are_normalised_when_read_back():
    data = record("a")
    data["peers"]["a"] = {"2001:DB8:0::2": "h2"}
    assert _records.check(data)["peers"]["a"] == {"2001:db8::2": "h2"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "is not valid JSON"),
        ("[]", "record: expected a dict, got list"),
        ('{"networks": {}}', "version: None is not a record version"),
        ('{"version": "1"}', "version: '1' is not a record version"),
        ('{"version": 2, "networks": {}, "endpoints": {}, "peers": {}}', "version: 2 was written by a newer"),
        ('{"version": 1, "networks": {}, "endpoints": {}}', "record: missing key(s) peers"),
        ('{"version": 1, "networks": {}, "endpoints": {}, "peers": {}, "x": 1}', "record: unknown key(s) 'x'"),
    ],
)
def test_corrupt_or_foreign_records_are_refused_by_name(text, message):
    with pytest.raises(_records.RecordError) as err:
        _records.decode(text, "/run/netfleet-overlay/ownership.json")
    assert message in str(err.value)
    assert str(err.value).startswith("/run/netfleet-overlay/ownership.json")
    assert "remove the file" in str(err.value)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("networks", "a", "netns"), "../etc", "networks['a'].netns: '../etc' is not a valid netns name"),
        (("networks", "a", "vni"), 0, "networks['a'].vni: 0 is outside 1..16777215"),
        (("networks", "a", "vxlan"), "vx/0", "networks['a'].vxlan: 'vx/0' is not a valid interface name"),
        (("endpoints", "a", "netns"), "a b", "endpoints['a'].netns: 'a b' is not a valid netns name"),
        (("endpoints", "a", "veth"), "veth-waytoolongname", "endpoints['a'].veth: 'veth-waytoolongname' must be"),
        (("endpoints", "a", "netns_created"), "yes", "endpoints['a'].netns_created: 'yes' is not true or false"),
        (("endpoints", "a", "network"), "", "endpoints['a'].network: '' is not a valid name"),
        (("peers", "a", "198.18.1.2"), "h\n2", "peers['a']['198.18.1.2']: 'h\\n2' is not a valid name"),
    ],
)
def test_bad_fields_name_the_field_and_the_value(path, value, message):
    data = record("a")
    data[path[0]][path[1]][path[2]] = value
    with pytest.raises(_records.RecordError) as err:
        _records.decode(json.dumps(data))
    assert message in str(err.value)


def test_bad_keys_are_named():
    data = record("a")
    data["endpoints"]["a"].pop("ifname")
    data["peers"]["a"]["not-an-ip"] = None
    with pytest.raises(_records.RecordError, match=r"endpoints\['a'\]: missing key\(s\) ifname"):
        _records.decode(json.dumps(data))
    data = record("a")
    data["peers"]["a"]["not-an-ip"] = None
    with pytest.raises(_records.RecordError, match=r"peers\['a'\]\['not-an-ip'\]: 'not-an-ip' is not an IP"):
        _records.decode(json.dumps(data))
    data = record("a")
    data["networks"]["x\x00y"] = data["networks"].pop("a")
    with pytest.raises(_records.RecordError, match=r"networks\['x\\x00y'\]: 'x\\x00y' is not a valid name"):
        _records.decode(json.dumps(data))


def test_forwarding_is_optional_and_checked():
    """``forwarding`` (issue 14: the uplinks whose forwarding egress turned on) is there only while it names one."""
    data = record("a")
    assert "forwarding" not in _records.decode(json.dumps(data))
    data["forwarding"] = ["eth0"]
    assert _records.decode(json.dumps(data))["forwarding"] == ["eth0"]
    for value, message in (("eth0", "forwarding: expected a list"), (["a/b"], "forwarding[0]: ")):
        data["forwarding"] = value
        with pytest.raises(_records.RecordError, match=re.escape(message)):
            _records.decode(json.dumps(data))


def test_non_utf8_file_is_a_clear_error(state_dir):
    with open(_records.path(state_dir), "wb") as handle:
        handle.write(b'{"version": 1, "networks": {"\xff": 1}}')
    os.chmod(_records.path(state_dir), 0o600)
    with pytest.raises(_records.RecordError, match=r"ownership.json cannot be read \(.*utf-8"):
        _records.load(state_dir)


def test_a_symlinked_record_is_refused(state_dir, tmp_path):
    target = tmp_path / "elsewhere.json"
    target.write_text(_records.encode(record("a")), encoding="utf-8")
    os.symlink(target, _records.path(state_dir))
    with pytest.raises(_records.RecordError, match="cannot be opened"):
        _records.load(state_dir)


def test_name_rule():
    for good in HOSTILE:
        assert _records.name(good, "f") == good
    for bad in ("", "a\tb", "x" * 256, None, 3, "a\udcffb"):
        with pytest.raises(InputError, match="f: "):
            _records.name(bad, "f")
