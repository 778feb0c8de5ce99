# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""netfleet-lab: a fleet of simulated Linux hosts on one machine (stdlib only).

Every host is a "holder": `unshare --net --mount --uts --ipc --pid --fork ...` running the launcher
tools/netfleet-lab as PID 1 (`netfleet-lab _holder NAME DIR`). The holder sets up a private hostname, /sys,
/run and an overlay on /etc, then reaps children until it is killed. A switch holder `sw` carries
the underlay bridge br0 (198.18.0.1/16); every host gets a veth `eth0` plugged into it.

`stop HOST` kills one holder (a host powered off: everything in it is lost) and `start HOST` boots it
again, empty, with the same address; `reboot HOST` does both.

Nothing is ever created in the caller's own network or mount namespace: links are created from
inside the switch (`nsenter --net`) and addresses are set from inside each host. See docs/lab.md.

The package: ``holder`` is that PID 1, ``lab`` the :class:`~netfleet_lab.lab.Lab` that builds, inspects and
removes a lab, ``cli`` the command line; ``tools/netfleet-lab`` and ``python -m netfleet_lab`` (from ``tools/``)
both run :func:`netfleet_lab.cli.main`.
"""
