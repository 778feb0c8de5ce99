# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``python -m netfleet_lab ARGS`` (from tools/): the same as ``tools/netfleet-lab ARGS``."""

import sys

from netfleet_lab.cli import main

sys.exit(main(sys.argv[1:]))
