# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""make bench: the performance benchmarks of netfleet.overlay (see docs/performance.md)."""

from __future__ import annotations
