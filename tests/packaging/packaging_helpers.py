# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers of the packaging tests: build and install the collection, and run tools isolated from the checkout.

Every tool runs with ``devenv.ansible_env(tmp, isolated=True)`` from a working directory outside the repo, so
neither the repo's ``ansible.cfg`` nor the ``.venv/collections`` symlink to the checkout can make a broken
package look fine.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from devenv import BIN, REPO, ansible_env


def run(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a tool from ``cwd`` (never the repo) and return its result; the caller asserts."""
    assert REPO not in (cwd, *cwd.parents), f"{cwd} is inside the repo: its ansible.cfg would be used"
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout, check=False)


def tool(name: str) -> str:
    return str(BIN / name)


def build(src: Path, dest: Path, tmp: Path) -> Path:
    """``ansible-galaxy collection build`` of the collection at ``src`` into ``dest``; returns the tarball."""
    dest.mkdir(parents=True, exist_ok=True)
    res = run(
        [tool("ansible-galaxy"), "collection", "build", "--output-path", str(dest), str(src)],
        ansible_env(tmp, isolated=True),
        tmp,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    (tarball,) = dest.glob("netfleet-overlay-*.tar.gz")
    return tarball


def install(tarball_or_requirements: Path, dest: Path, tmp: Path, *, requirements: bool = False) -> Path:
    """Offline install (no dependencies to fetch) into ``dest``; returns the installed collection's root."""
    src = ["-r", str(tarball_or_requirements)] if requirements else [str(tarball_or_requirements)]
    cmd = [tool("ansible-galaxy"), "collection", "install", *src, "-p", str(dest), "--offline", "--no-deps", "--force"]
    res = run(cmd, ansible_env(tmp, isolated=True), tmp)
    assert res.returncode == 0, res.stdout + res.stderr
    root = dest / "ansible_collections" / "netfleet" / "overlay"
    assert (root / "MANIFEST.json").is_file(), res.stdout
    return root


@dataclass(frozen=True)
class Installed:
    tarball: Path
    collections: Path  # what ANSIBLE_COLLECTIONS_PATH points at
    root: Path  # <collections>/ansible_collections/netfleet/overlay
    tmp: Path  # a scratch directory outside the repo (also the cwd of the tools)
