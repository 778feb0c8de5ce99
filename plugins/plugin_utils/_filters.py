# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: what the collection's filter plugins share.  May change without notice.
"""The one way a filter of the collection reports bad input: its engine's error, named after the filter.

Each filter's logic lives in an engine of ``plugin_utils`` that raises its own ``ValueError`` subclass, so it can
be unit-tested on plain data; the filter only turns that error into Ansible's, with the filter's name in front.
"""

from __future__ import annotations

import functools

from ansible.errors import AnsibleFilterError


def filter_errors(name: str, *errors: type[Exception]):
    """Decorate a filter function: the ``errors`` that it raises fail the task as ``<name>: <message>``."""

    def decorate(function):
        @functools.wraps(function)
        def call(*args, **kwargs):
            try:
                return function(*args, **kwargs)
            except errors as exc:
                raise AnsibleFilterError(f"{name}: {exc}") from exc

        return call

    return decorate
