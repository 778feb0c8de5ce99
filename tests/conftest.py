# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make ``ansible_collections.netfleet.overlay`` importable for every test, and the shared helpers of this
directory (``support/``).

The repo root is the collection root, so a directory ``<repo>/.venv/collections/ansible_collections/netfleet``
holds a symlink ``overlay -> <repo>``; it is created here when missing.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLLECTIONS = REPO / ".venv" / "collections"
_LINK = COLLECTIONS / "ansible_collections" / "netfleet" / "overlay"

if not _LINK.exists():
    _LINK.parent.mkdir(parents=True, exist_ok=True)
    if _LINK.is_symlink():  # dangling: the repo moved
        _LINK.unlink()
    with contextlib.suppress(FileExistsError):  # a concurrent test run made it first
        _LINK.symlink_to(os.path.relpath(REPO, _LINK.parent), target_is_directory=True)

if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
