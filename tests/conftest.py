# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make ``ansible_collections.netfleet.overlay`` importable for every test, with the shared helpers of this
directory (``support/``) and the developer tooling of ``tools/`` (``devenv``, ``netfleet_lab``).

``tools/devenv.py`` bootstraps the collection link (``.venv/collections/ansible_collections/netfleet/overlay``
-> the checkout) and builds the environment of every Ansible subprocess the tests start.
"""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parent
for _path in (str(_TESTS), str(_TESTS.parent / "tools")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import devenv  # noqa: E402  (found through the line above)

devenv.import_collection()
