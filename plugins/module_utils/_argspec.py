# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: argument-spec pieces shared by several modules (documented in doc_fragments/).  May change without notice.
"""Shared option sets, so ``netns``/``dev``/table options are declared once."""

from __future__ import annotations


def netns_option() -> dict:
    return {"netns": {"type": "str"}}


def table_argument_spec(entry_options: dict) -> dict:
    """Options of the table modules (``neigh``, ``fdb``); ``entry_options`` describes one entry."""
    spec = netns_option()
    spec.update(
        {
            "dev": {"type": "str", "required": True},
            "entries": {"type": "list", "elements": "dict", "options": entry_options, "default": []},
            "state": {
                "type": "str",
                "default": "merged",
                "choices": ["merged", "replaced", "overridden", "deleted", "gathered", "rendered"],
            },
        }
    )
    return spec
