# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The developer environment of this checkout: where the venv is, the one bootstrap of the collection link, and
the one environment that ``ansible``/``ansible-playbook`` subprocesses get.

The repo root is the collection root, so ``.venv/collections/ansible_collections/netfleet/overlay`` is a symlink
to the checkout; Ansible finds the collection through ``ANSIBLE_COLLECTIONS_PATH=.venv/collections`` and Python
code imports it as ``ansible_collections.netfleet.overlay`` once :func:`import_collection` has run.

It lives in ``tools/`` because everything that needs it can reach it there without touching the collection's
own code: ``make venv`` runs it as a script, ``tools/bench`` (run from ``tools/``) and ``tools/netfleet_lab``
import it as a sibling, and ``tests/conftest.py`` puts ``tools/`` on ``sys.path`` for the tests. It is not
shipped: ``galaxy.yml`` leaves ``tools/`` out of the tarball.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = REPO / ".venv" / "bin"
# The venv's tools; another interpreter's (an ansible-core compat venv) when the tests run without .venv.
BIN = VENV_BIN if (VENV_BIN / "ansible").exists() else Path(sys.executable).parent
COLLECTIONS = REPO / ".venv" / "collections"
COLLECTION_LINK = COLLECTIONS / "ansible_collections" / "netfleet" / "overlay"

# Quiet, plain output for a run whose output a program reads.
_QUIET = {
    "ANSIBLE_NOCOLOR": "1",
    "ANSIBLE_FORCE_COLOR": "0",
    "ANSIBLE_DEPRECATION_WARNINGS": "0",
    "ANSIBLE_RETRY_FILES_ENABLED": "0",
    "ANSIBLE_LOCALHOST_WARNING": "0",
    "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
}
# Variables that could point an isolated run back at the checkout or at someone's configuration.
_LEAKY = ("ANSIBLE_CONFIG", "ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_COLLECTIONS_PATHS", "ANSIBLE_INVENTORY")


def ensure_collection_link() -> None:
    """Create ``.venv/collections/ansible_collections/netfleet/overlay -> <repo>`` when missing (or dangling)."""
    if COLLECTION_LINK.exists():
        return
    COLLECTION_LINK.parent.mkdir(parents=True, exist_ok=True)
    if COLLECTION_LINK.is_symlink():  # dangling: the repo moved
        COLLECTION_LINK.unlink()
    with contextlib.suppress(FileExistsError):  # a concurrent run made it first
        COLLECTION_LINK.symlink_to(os.path.relpath(REPO, COLLECTION_LINK.parent), target_is_directory=True)


def import_collection() -> None:
    """Make ``ansible_collections.netfleet.overlay`` importable in this process, the way Ansible finds it."""
    ensure_collection_link()
    if str(COLLECTIONS) not in sys.path:
        sys.path.insert(0, str(COLLECTIONS))


def ansible_env(
    tmp: Path | None = None, *, isolated: bool = False, collections: Path | None = None, **extra: str
) -> dict[str, str]:
    """The environment of an Ansible subprocess: this process's, quiet, plus ``extra``.

    By default Ansible uses the checkout as ``make`` does: its ``ansible.cfg``, the collection through the link
    (``collections`` overrides the path) and the venv's Python on the hosts.  ``isolated``: the run must see only
    ``collections`` (or no collection at all) and nothing of the checkout or of someone's configuration, as the
    packaging tests need; the venv's tools come first on ``PATH``.  ``tmp``: Ansible's home and local temp go
    there, so parallel runs do not share them.
    """
    if isolated:
        env = {k: v for k, v in os.environ.items() if k not in _LEAKY}
        env.update(
            PATH=f"{BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}", ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false"
        )
    else:
        ensure_collection_link()
        env = dict(os.environ)
        env.update(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_PYTHON_INTERPRETER=str(BIN / "python"))
        collections = collections or COLLECTIONS
    if collections is not None:
        env["ANSIBLE_COLLECTIONS_PATH"] = str(collections)
    env.update(_QUIET)
    if tmp is not None:
        env.update(ANSIBLE_HOME=str(tmp / "ansible-home"), ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-local"))
    env.update(extra)
    return env


if __name__ == "__main__":  # make venv
    ensure_collection_link()
