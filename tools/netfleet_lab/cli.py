# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The command line of netfleet-lab: up, down, exec, list, stop, start, reboot, and the holders' ``_holder``."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from netfleet_lab.holder import holder_main
from netfleet_lab.lab import DEFAULT_DIR, FORBIDDEN_DIR_PREFIXES, MAX_HOSTS, Lab, LabError


def resolve_dir(value: str | None) -> Path:
    path = Path(os.path.realpath(value or DEFAULT_DIR))
    text = str(path)
    if any(c in text for c in ",:\\ \t\n"):
        raise LabError(f"--dir {text!r}: the path must not contain commas, colons, backslashes or spaces")
    if path == Path("/") or any(text == p or text.startswith(p + "/") for p in FORBIDDEN_DIR_PREFIXES):
        raise LabError(f"--dir {text!r}: choose a directory outside / , /etc, /run, /sys, /proc and /dev")
    return path


def parse_args(argv: list[str]) -> argparse.Namespace:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dir", help=f"lab state directory (default: {DEFAULT_DIR})")
    parser = argparse.ArgumentParser(
        prog="netfleet-lab",
        description="Simulated fleet of Linux hosts (namespaces) joined by an underlay switch on 198.18.0.0/16.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", parents=[common], help="build hosts h1..hN and write DIR/inventory.yml")
    p_up.add_argument("--hosts", type=int, required=True, metavar="N")
    p_up.add_argument("--ssh", action="store_true", help="run sshd in every host and add a controller netns ctl")
    sub.add_parser("down", parents=[common], help="remove the lab (also after crashes)")
    p_exec = sub.add_parser("exec", parents=[common], help="run a command inside a host (hK, sw or ctl)")
    p_exec.add_argument("host")
    p_exec.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    sub.add_parser("list", parents=[common], help="show hosts, pids, liveness and addresses")
    for verb, text in (
        ("stop", "power a host off: kill its holder (everything in it is lost); Ansible finds it unreachable"),
        ("start", "boot a stopped host again, empty, with the same address"),
        ("reboot", "stop and start a host"),
    ):
        sub.add_parser(verb, parents=[common], help=text).add_argument("host")
    args = parser.parse_args(argv)
    if args.command == "up" and not 1 <= args.hosts <= MAX_HOSTS:
        parser.error(f"--hosts must be between 1 and {MAX_HOSTS}")
    if args.command == "exec" and args.cmd[:1] == ["--"]:
        args.cmd = args.cmd[1:]
    return args


def _terminate(signum, _frame):
    raise SystemExit(128 + signum)


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "_holder":
        return holder_main(argv[1], argv[2])
    args = parse_args(argv)
    if args.command != "list" and os.geteuid() != 0:
        print(f"netfleet-lab {args.command}: must run as root (it creates namespaces)", file=sys.stderr)
        return 2
    try:
        lab = Lab(resolve_dir(args.dir))
        if args.command == "exec":
            return lab.exec(args.host, args.cmd)
        if args.command == "list":
            return lab.list()
        if args.command == "down" and not lab.dir.exists():
            return lab.down()
        signal.signal(signal.SIGTERM, _terminate)  # up cleans up on SIGTERM as on Ctrl-C
        with lab.locked():
            if args.command == "up":
                return lab.up(args.hosts, args.ssh)
            if args.command in ("stop", "start", "reboot"):
                return getattr(lab, args.command)(args.host)
            return lab.down()
    except (LabError, OSError) as exc:
        print(f"netfleet-lab {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
