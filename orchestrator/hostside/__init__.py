"""Code shipped to hosts (Ansible module_utils) and run there: standard library only, Python 3.8+."""
