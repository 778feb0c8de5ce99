# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: the command lines the modules return for people to run.  May change without notice.
"""The one place that turns words into the ``ip``/``bridge`` command lines returned as ``commands``/``rendered``.

People paste those lines into a shell.  A netns or interface name may hold any character but ``/``, ``:`` and
whitespace (``;``, ``$``, backquotes, quotes), and an alias is free text, so every word is shell-quoted
(:func:`shlex.quote`): a pasted line runs exactly the one command it shows, never a second one.
"""

from __future__ import annotations

import shlex

quote = shlex.quote


def line(*words) -> str:
    """One command line, every word quoted (numbers are written as they are)."""
    return " ".join(quote(str(word)) for word in words)


def tool(name: str, netns: str | None, *words) -> str:
    """``NAME [-n NETNS] WORDS...``: an ``ip`` or ``bridge`` command run in ``netns`` (None: the host's own)."""
    return line(name, "-n", netns, *words) if netns else line(name, *words)


def ip(netns: str | None, *words) -> str:
    """``ip [-n NETNS] WORDS...``."""
    return tool("ip", netns, *words)
