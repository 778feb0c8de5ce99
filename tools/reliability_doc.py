# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write docs/reliability.md from the results of the last lab run (tests/output/reliability/*.json).

The reliability tests (tests/lab/test_reliability_*.py, test_user_mistakes.py, test_ownership.py, test_upgrade.py,
test_security_local.py, test_vxlan_injection.py) each write one results file through
``reliability_helpers.Results``. This script only reads them: every count and every row of the page comes from
a case that ran. Run it after ``make test`` (or the lab tests alone): ``make reliability-doc``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "tests" / "output" / "reliability"
DOC = REPO / "docs" / "reliability.md"

# results file -> the test file that writes it
SOURCES = {
    "user_mistakes": "tests/lab/test_user_mistakes.py",
    "ownership": "tests/lab/test_ownership.py",
    "bad_input": "tests/lab/test_reliability_bad_input.py",
    "drift": "tests/lab/test_reliability_drift.py",
    "faults": "tests/lab/test_reliability_faults.py",
    "security": "tests/lab/test_security_local.py",
    "vxlan_injection": "tests/lab/test_vxlan_injection.py",
    "upgrade": "tests/lab/test_upgrade.py",
    "wireguard": "tests/lab/test_wireguard.py",
}

HOW = """\
## How "changes nothing" is checked

A snapshot of a lab host is read inside it, independently of the collection (`tests/lab/reliability_helpers.py`).
It covers the host's own namespace and every named netns. For each, it records links (`ip -j -d link`), addresses,
IPv4 and IPv6 routes of every table, static neighbours and static FDB entries, the UDP sockets (`ss -uln`, where
the vxlan sockets show) and the nftables ruleset. Only what changes by itself is left out: bridge timers, learned
neighbours and FDB entries, and the nft counters. Two snapshots of every host are compared item by item, and a
difference is printed as `host netns section -/+ item`. A case that must change nothing passes only when the
snapshots of all hosts before and after are identical and no task reports `changed`.
"""

NOT_COVERED = """\
## Not covered here

- The per-host lock (two runs on one host at once) is tested in `tests/lab/test_concurrency.py`.
- The foreign-vxlan check sees vxlan devices in the host's namespace and in named netns (`/run/netns`). It does not
  see a device in a namespace that is only held open by a process or bound elsewhere, such as Docker's
  `/var/run/docker/netns`. Creating the collection's device can then still fail, with the kernel's error naming the
  device being created.
- A forged peer source address on the underlay (spoofing a peer VTEP) is outside the allowlist's reach; see
  docs/security.md (reverse-path filtering or encryption).
"""


def _load() -> dict[str, dict]:
    found = {}
    for name in SOURCES:
        path = RESULTS / f"{name}.json"
        if path.is_file():
            found[name] = json.loads(path.read_text(encoding="utf-8"))
    return found


def _cell(text, limit: int = 170) -> str:
    text = " ".join(str(text or "").split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _what(case: dict) -> str:
    """What a case tried: its ``what``, else its first check, else its name."""
    return _cell(case.get("what") or (case.get("checks") or [case["case"]])[0])


def _verdict(case: dict) -> str:
    return "pass" if case.get("ok") else "**FAIL**: " + _cell("; ".join(case.get("problems") or ["see the test"]))


def _cases(results: dict, name: str, *kinds: str) -> list[dict]:
    cases = results.get(name, {}).get("cases", [])
    return [c for c in cases if not kinds or c.get("kind") in kinds]


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _runs(results: dict) -> str:
    rows = []
    for name, data in results.items():
        rows.append(
            [
                f"`{SOURCES[name]}`",
                data.get("finished", "?"),
                f"{data.get('seconds', 0):.0f} s",
                str(len(data["cases"])),
            ]
        )
    return _table(["test file", "finished", "took", "cases"], rows)


def render(results: dict[str, dict]) -> str:
    everything = [c for data in results.values() for c in data["cases"]]
    failed = [c for c in everything if not c.get("ok")]
    mistakes = _cases(results, "user_mistakes", "user mistake") + _cases(results, "ownership", "mistake", "guard")
    bad = _cases(results, "bad_input", "role variable", "inventory", "module")
    bad_kinds = Counter(c["kind"] for c in bad)
    drift = _cases(results, "drift", "drift")
    faults = _cases(results, "faults", "fault")
    security = [c for c in everything if c.get("kind") == "security"]
    tried = sum(int(c.get("tried", 0)) for c in security)
    through = sum(int(c.get("got_through", 0)) for c in security)
    upgrades = _cases(results, "upgrade", "upgrade")
    teardowns = [c for c in everything if c.get("kind") == "teardown"]
    lost = sum(int(c.get("entries_lost", 0)) for c in everything)
    guards = sorted({c.get("guard") for c in mistakes if c.get("guard")})

    out = ["# Reliability: what is tested, and the last run\n"]
    out.append(
        "Written by `make reliability-doc` from the results files of the last lab run"
        " (`tests/output/reliability/*.json`); do not edit it by hand. Every count and every row below is a case"
        " that ran. Each test file builds its own lab of simulated hosts (`tools/netfleet-lab`) with the demo fleet"
        " of `inventories/lab`.\n"
    )
    out.append(_runs(results))
    out.append("\n## Summary\n")
    out.append(
        _table(
            ["", "count", "result"],
            [
                [
                    "user mistakes tried",
                    f"**{len(mistakes)}**",
                    f"each caught by a guard ({len(guards)} guards, named in section 1)",
                ],
                [
                    "bad inputs tried",
                    f"**{len(bad)}**: " + ", ".join(f"{n} {k}" for k, n in sorted(bad_kinds.items())),
                    "each failed with the field, the host and the value, and changed nothing",
                ],
                [
                    "drift kinds",
                    f"**{len(drift)}**",
                    "each reported by `--check --diff`, repaired by the next run, then changed=0",
                ],
                ["faults survived", f"**{len(faults)}**", "one run converged after each"],
                ["security attempts", f"**{tried}** in {len(security)} cases", f"**{through}** got through"],
                ["upgrades", f"**{len(upgrades)}**", "the previous release's fleet taken over with no table change"],
                ["teardowns without residue", f"**{len(teardowns)}**", "every host back to its snapshot from before"],
                ["entries lost", f"**{lost}**", "no expected FDB or ARP entry missing on a host that stayed up"],
                ["cases failed", f"**{len(failed)}**", ", ".join(c["case"] for c in failed) or "none"],
            ],
        )
    )
    out.append("\n" + HOW)

    out.append(f"\n## 1. User mistakes: {len(mistakes)}\n")
    out.append(
        "Mistakes a new user makes, tried on the converged demo lab (`tests/lab/test_user_mistakes.py`,"
        " `tests/lab/test_ownership.py`). Where a mistake is refused, nothing changes on any host (snapshots of all"
        " hosts before and after) and the message names the host, the variable or field and the value, and says how"
        " to do what the user probably meant. Guards in use:\n"
    )
    out.append("".join(f"- {guard}\n" for guard in guards))
    out.append(
        "\n"
        + _table(
            ["mistake", "guard", "what the user sees (abridged)", "last run"],
            [
                [
                    _what(c),
                    _cell(c.get("guard") or c["case"]),
                    _cell(c.get("message")),
                    _verdict(c),
                ]
                for c in mistakes
            ],
        )
    )

    out.append(f"\n## 2. Bad input: {len(bad)}\n")
    out.append(
        "Every case runs alone on the converged fleet (`tests/lab/test_reliability_bad_input.py`). Role and"
        " inventory cases run `playbooks/site.yml` with a bad variable; module cases run one module ad hoc on h1."
        " Each must fail (rc != 0) with the field, the host and the value in its message, have no task report"
        " `changed`, and leave every host's snapshot identical. A fleet-wide value (`overlay_networks`) belongs to no"
        " single host: the host named is the one Ansible reports the failure on.\n\n"
    )
    out.append(
        _table(
            ["case", "kind", "input", "message (abridged)", "last run"],
            [[f"`{c['case']}`", c["kind"], _cell(c.get("what")), _cell(c.get("message")), _verdict(c)] for c in bad],
        )
    )

    out.append(f"\n## 3. Drift: {len(drift)} kinds\n")
    out.append(
        "Each kind is made by hand on h2 in the converged fleet, one at a time (`tests/lab/test_reliability_drift.py`):"
        " `site.yml --check --diff` reports changed on h2 only and shows the drift in h2's diff, changing nothing; the"
        " next run repairs h2 only; the run after that is changed=0 everywhere.\n\n"
    )
    out.append(
        _table(
            ["drift", "made with (in h2)", "last run"],
            [[_what(c), f"`{_cell(c.get('shell'), 120)}`", _verdict(c)] for c in drift],
        )
    )

    out.append(f"\n## 4. Faults: {len(faults)}\n\n")
    out.append(
        _table(
            ["fault", "entries lost", "last run"],
            [[_what(c), str(c.get("entries_lost", 0)), _verdict(c)] for c in faults],
        )
    )

    out.append(f"\n## 5. Security: {tried} attempts, {through} got through\n")
    out.append(
        "Each attack of docs/security.md is tried on a lab; an attempt 'got through' when it reached what the guard"
        " protects (a frame on an endpoint, a followed symlink, a blocked converge, an entered namespace, an adopted or"
        " deleted object). Where the test also ran the attack without the guard, that column shows the attack is"
        " real.\n\n"
    )
    out.append(
        _table(
            ["attempt", "test", "tried", "got through", "without the guard", "last run"],
            [
                [
                    _cell(c["case"]),
                    f"`{Path(SOURCES[n]).name}`",
                    str(c.get("tried", 0)),
                    f"**{c.get('got_through', 0)}**",
                    str(c["got_through_without_guard"]) if "got_through_without_guard" in c else "",
                    _verdict(c),
                ]
                for n in results
                for c in results[n]["cases"]
                if c.get("kind") == "security"
            ],
        )
    )

    out.append(f"\n## 6. Upgrades: {len(upgrades)}\n\n")
    out.append(
        _table(
            ["upgrade", "checks", "last run"],
            [[c["case"], _cell("; ".join(c.get("checks", [])), 400), _verdict(c)] for c in upgrades],
        )
    )
    out.append(f"\n## 7. Teardowns without residue: {len(teardowns)}\n\n")
    out.append(
        "Each test file ends with `teardown.yml`; every host's snapshot must then equal the one taken before its first"
        " `site.yml`.\n\n"
    )
    out.append(_table(["teardown", "last run"], [[c["case"], _verdict(c)] for c in teardowns]))
    out.append("\n" + NOT_COVERED)
    return _blank_lines("".join(out))


def _blank_lines(text: str) -> str:
    """A blank line before every table and heading, and after every heading (Markdown needs the first)."""
    lines: list[str] = []
    for line in text.splitlines():
        starts_block = line.startswith("#") or (line.startswith("|") and not (lines and lines[-1].startswith("|")))
        if starts_block and lines and lines[-1] != "":
            lines.append("")
        if lines and lines[-1].startswith("#") and line != "":
            lines.append("")
        lines.append(line)
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a results file is missing")
    args = parser.parse_args(argv)
    results = _load()
    missing = [f"{name}.json ({test})" for name, test in SOURCES.items() if name not in results]
    if missing:
        print("missing results (run those tests first): " + ", ".join(missing), file=sys.stderr)
        if args.check:
            return 1
    DOC.write_text(render(results), encoding="utf-8")
    print(f"wrote {DOC.relative_to(REPO)} from {len(results)} results files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
