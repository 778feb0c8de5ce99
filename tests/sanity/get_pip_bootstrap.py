# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stand-in for the get-pip script that ansible-test downloads to bootstrap pip in its sanity venvs.

ansible-test fetches that script from a CI file server this machine cannot reach.  It runs the script with
pip-install arguments; this stand-in installs the interpreter's bundled pip (ensurepip) and then runs
``pip install`` with the same arguments against the package index.  `make sanity` puts it in ansible-test's
cache under the name ansible-test looks for.
"""

from __future__ import annotations

import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}  # get-pip's own flags; plain pip install has no such options


def main() -> int:
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
    args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY]
    return subprocess.call([sys.executable, "-m", "pip", "install", "-q", *args])


if __name__ == "__main__":
    sys.exit(main())
