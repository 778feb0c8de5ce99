# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: argument-spec pieces shared by several modules (documented in doc_fragments/).  May change without notice.
"""Shared option sets, so ``netns``/``dev``/table options are declared once."""

from __future__ import annotations


def netns_option() -> dict:
    return {"netns": {"type": "str"}}


def table_argument_spec() -> dict:
    """Options of the table modules (``neigh``, ``fdb``).

    ``entries`` has no per-entry suboption spec: Ansible's validator would check each of (up to 100,000) entries
    field by field, several seconds at that size.  The module checks them itself, in one pass
    (:func:`._validate.table_entries`, through :func:`._table.normalize_pairs`), with messages that name the
    entry's index, field and value; the modules' DOCUMENTATION still documents the entry's fields.
    """
    spec = netns_option()
    spec.update(
        {
            "dev": {"type": "str", "required": True},
            "entries": {"type": "list", "elements": "dict", "default": []},
            "full_tables": {"type": "bool", "default": False},
            "state": {
                "type": "str",
                "default": "merged",
                "choices": ["merged", "replaced", "overridden", "deleted", "gathered", "rendered"],
            },
        }
    )
    return spec
