# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host lock refuses what only another user (or a planted link) could have made, and never follows links."""

from __future__ import annotations

import os

import pytest

from ansible_collections.netfleet.overlay.plugins.module_utils import _lock


def take(path: str) -> None:
    with _lock.host_lock(1, path=path):
        pass


@pytest.fixture
def state_dir(tmp_path):
    path = tmp_path / "state"
    path.mkdir(mode=0o700)
    return path


def test_default_path_is_the_root_only_state_directory():
    assert _lock.LOCK_PATH == "/run/netfleet-overlay/host.lock"


def test_lock_file_is_created_0600_and_holds_the_pid(state_dir):
    path = str(state_dir / "host.lock")
    with _lock.host_lock(1, path=path):
        assert os.stat(path).st_mode & 0o777 == 0o600
        assert (state_dir / "host.lock").read_text().strip() == str(os.getpid())


def test_symlink_at_the_lock_path_is_not_followed(state_dir, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (state_dir / "host.lock").symlink_to(victim)
    with pytest.raises(_lock.LockTimeout, match=r"cannot take the host lock .*host.lock.* cannot be opened"):
        take(str(state_dir / "host.lock"))
    assert victim.read_text() == "precious\n"


def test_hard_link_at_the_lock_path_is_refused(state_dir, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    os.link(victim, state_dir / "host.lock")
    with pytest.raises(_lock.LockTimeout, match=r"one link owned by root .*links 2"):
        take(str(state_dir / "host.lock"))
    assert victim.read_text() == "precious\n"


@pytest.mark.parametrize("mode", [0o755, 0o1777])
def test_a_directory_others_can_enter_is_refused(tmp_path, mode):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(mode)
    with pytest.raises(_lock.LockTimeout, match=rf"has mode {mode:04o}; it must be 0700"):
        take(str(shared / "host.lock"))
    assert not (shared / "host.lock").exists()


def test_a_symlinked_state_directory_is_refused(state_dir, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(state_dir)
    with pytest.raises(_lock.LockTimeout, match=r"cannot be opened as a directory"):
        take(str(link / "host.lock"))
    assert not (state_dir / "host.lock").exists()
