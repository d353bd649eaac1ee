#!/usr/bin/python
"""Ansible module: does a daemon run the binary that is installed now, or one a package upgrade replaced?"""

from __future__ import annotations

DOCUMENTATION = r"""
module: upgrade_service_binary
short_description: Tell whether a running daemon runs the installed binary
description:
  - Finds the processes named I(process) (their comm, as pgrep -x does) and compares each one's start time
    with the last change of I(binary) on disk. A package upgrade replaces the binary (a new inode, so a new
    change time, and the running process's /proc/PID/exe ends in " (deleted)"); a process started before that
    still runs the old code, whatever its service manager says about the service being started.
  - Read-only; runs in check mode.
options:
  process:
    description: Process name (comm, at most 15 characters), e.g. nv-hostengine or nv-fabricmanager.
    type: str
    required: true
  binary:
    description: Path of the installed binary, e.g. /usr/bin/nv-hostengine.
    type: str
    required: true
"""

RETURN = r"""
running:
  description: Whether any process of that name runs.
  returned: always
  type: bool
stale:
  description: PIDs of the processes that started before the installed binary last changed, or whose executable
    was deleted; empty when every running process runs the installed binary.
  returned: always
  type: list
  elements: int
pids:
  description: Every matching PID.
  returned: always
  type: list
  elements: int
binary_changed_at:
  description: The binary's change time (seconds since the epoch), null when it is missing.
  returned: always
  type: float
"""

import os

from ansible.module_utils.basic import AnsibleModule


def boot_time():
    with open("/proc/stat") as fh:
        for line in fh:
            if line.startswith("btime "):
                return float(line.split()[1])
    return 0.0


def started_at(pid, btime, ticks):
    """Seconds since the epoch when the process started (/proc/PID/stat field 22, clock ticks after boot)."""
    with open("/proc/%d/stat" % pid) as fh:
        text = fh.read()
    fields = text[text.rindex(")") + 2:].split()
    return btime + int(fields[19]) / float(ticks)


def main():
    module = AnsibleModule(argument_spec={"process": {"type": "str", "required": True},
                                          "binary": {"type": "str", "required": True}},
                           supports_check_mode=True)
    name, binary = module.params["process"][:15], module.params["binary"]
    try:
        changed_at = os.stat(binary).st_ctime
    except OSError:
        changed_at = None
    btime, ticks = boot_time(), os.sysconf("SC_CLK_TCK")
    pids, stale = [], []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            with open("/proc/%d/comm" % pid) as fh:
                if fh.read().strip() != name:
                    continue
            start = started_at(pid, btime, ticks)
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        pids.append(pid)
        try:
            deleted = os.readlink("/proc/%d/exe" % pid).endswith(" (deleted)")
        except OSError:
            deleted = False
        # one second of slack: start times are counted in clock ticks from a boot time given in whole seconds
        if deleted or (changed_at is not None and start + 1.0 < changed_at):
            stale.append(pid)
    module.exit_json(changed=False, running=bool(pids), pids=sorted(pids), stale=sorted(stale),
                     binary_changed_at=changed_at)


if __name__ == "__main__":
    main()
