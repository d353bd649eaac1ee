"""IO at the edges: Ansible (the only ansible_runner import), the journal and lock, files and fact sources."""
