# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""make bench (p): a module that takes table entries and does nothing with them (not part of the collection).

Its task costs what Ansible itself costs to carry the entries into a module and a small result back: templating
the variable, the module's arguments (JSON), AnsibleModule's argument checks. No module that takes the same
entries can be faster.
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule


def main():
    spec = {"entries": {"type": "list", "elements": "dict", "default": []}}
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    entries = module.params["entries"]
    module.exit_json(changed=False, count=len(entries), invocation={"module_args": {"entries": len(entries)}})


if __name__ == "__main__":
    main()
