"""Ansible-style inventories: YAML and INI formats, group and host vars, host patterns, and
how each host is reached."""
