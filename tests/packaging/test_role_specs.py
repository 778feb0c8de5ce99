# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""roles/*/meta/argument_specs.yml and defaults/main.yml agree, and every public variable is documented.

Public variables are ``<role>_*``; private ones are ``_<role>_*`` and live in ``vars/main.yml``. A public variable
that the role's tasks or vars use must have a spec entry (``ansible-doc -t role`` is the only place users read
about it); a default must have the spec's type and the spec's default; a spec default must be in defaults/main.yml
(where users look for it). Options without a default (``overlay_vtep``) stay out of defaults/main.yml.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLES = sorted(p for p in (REPO / "roles").iterdir() if (p / "meta" / "argument_specs.yml").is_file())

pytestmark = pytest.mark.packaging

# Python types that a value of each argument-spec type may have in YAML.
TYPES = {
    "str": (str,),
    "int": (int,),
    "float": (float, int),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
    "path": (str,),
    "raw": (object,),
}


def load(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def spec_options(role: Path) -> dict:
    return load(role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]


def defaults(role: Path) -> dict:
    return load(role / "defaults" / "main.yml")


def strings(node):
    """Every key and scalar of a YAML document (task names, arguments, templates, messages)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)
    elif isinstance(node, str):
        yield node


def used_public_vars(role: Path) -> dict[str, set[str]]:
    """Public variable name -> the role files that mention it (comments excluded: the YAML is parsed)."""
    # not preceded by a word character or a dot, so _overlay_x and netfleet.overlay.overlay_facts do not count
    pattern = re.compile(rf"(?<![\w.]){re.escape(role.name)}_[a-z0-9_]*[a-z0-9]")
    files = sorted((role / "tasks").glob("*.yml")) + sorted((role / "vars").glob("*.yml"))
    found: dict[str, set[str]] = {}
    for path in files:
        for text in strings(load(path)):
            for name in pattern.findall(text):
                found.setdefault(name, set()).add(str(path.relative_to(role)))
    return found


@pytest.fixture(params=ROLES, ids=[r.name for r in ROLES])
def role(request) -> Path:
    return request.param


def test_every_default_has_a_matching_spec(role):
    options = spec_options(role)
    problems = []
    for name, value in defaults(role).items():
        spec = options.get(name)
        if spec is None:
            problems.append(f"{name}: in defaults/main.yml but not in meta/argument_specs.yml")
            continue
        kind = spec.get("type", "str")
        if not isinstance(value, TYPES[kind]) or (kind == "int" and isinstance(value, bool)):
            problems.append(f"{name}: default {value!r} is not of the spec's type {kind}")
        if "default" not in spec:
            problems.append(f"{name}: the spec has no default, defaults/main.yml says {value!r}")
        elif spec["default"] != value:
            problems.append(f"{name}: spec default {spec['default']!r} != defaults/main.yml {value!r}")
        if "choices" in spec and value not in spec["choices"]:
            problems.append(f"{name}: default {value!r} is not one of the choices {spec['choices']}")
    assert not problems, "\n".join(problems)


def test_every_spec_default_is_in_defaults(role):
    values = defaults(role)
    missing = [name for name, spec in spec_options(role).items() if "default" in spec and name not in values]
    assert not missing, f"spec options with a default that defaults/main.yml lacks: {missing}"


def test_public_names_only_in_the_spec_and_defaults(role):
    public = f"{role.name}_"
    assert all(name.startswith(public) for name in spec_options(role)), "spec options must be named " + public + "*"
    assert all(name.startswith(public) for name in defaults(role)), "private variables belong in vars/main.yml"
    leaked = [name for name in load(role / "vars" / "main.yml") if not name.startswith("_" + public)]
    assert not leaked, f"vars/main.yml is for private _{public}* variables (they beat inventory vars): {leaked}"


def test_no_undocumented_public_variable(role):
    options = spec_options(role)
    undocumented = {name: files for name, files in used_public_vars(role).items() if name not in options}
    assert not undocumented, f"public variables used but not in meta/argument_specs.yml: {undocumented}"


def test_the_scan_sees_the_role():
    """The scan itself works: it finds the variables that the role is known to use."""
    used = used_public_vars(REPO / "roles" / "overlay")
    assert {"overlay_networks", "overlay_state", "overlay_fleet_group", "overlay_install_deps"} <= set(used)
    assert "overlay_facts" not in used and "overlay_host" not in used  # module names, not variables
