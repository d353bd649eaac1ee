"""The lab fleet: simulated GPU hosts (Linux namespaces, one sshd each on a loopback address) that real
Ansible reaches over SSH, an air-gapped apt repository of simulated NVIDIA packages, and a real Slurm
cluster whose nodes are the lab hosts. Linux and root only.

Entry points: :class:`orchestrator.lab.lab.Lab` (``up``, ``down``, ``status``), fault injection in
:mod:`orchestrator.lab.faults`.
"""
