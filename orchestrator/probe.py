"""Fast probes over SSH (paramiko) for what must be quick, frequent and parallel.

Reachability, boot id (did the host really reboot?), the driver version nvidia-smi reports and the processes
holding a GPU (can we drain?). Ansible is too slow for heartbeats and reboot waits; these take one SSH round
trip each. Transient connection failures are retried with exponential backoff (tenacity); a host that stays
unreachable raises :class:`HostUnreachable` with the last reason.
"""

from __future__ import annotations

import shlex
import socket
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import paramiko
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from orchestrator.errors import HostUnreachable
from orchestrator.models import Connection

T = TypeVar("T")

QUERY_DRIVER = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
QUERY_APPS = ["nvidia-smi", "--query-compute-apps=pid,process_name,used_memory", "--format=csv,noheader"]
_TRANSIENT = (OSError, paramiko.SSHException, EOFError)


@dataclass(frozen=True)
class GpuProcess:
    pid: int
    name: str
    used_memory_mib: int | None


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try a host before calling it unreachable: attempts with exponential backoff."""

    attempts: int = 3
    initial_wait_s: float = 0.5
    max_wait_s: float = 8.0
    connect_timeout_s: float = 5.0
    command_timeout_s: float = 30.0


def parse_driver_query(text: str) -> str | None:
    """``nvidia-smi --query-gpu=driver_version --format=csv,noheader``: one line per GPU, all equal."""
    versions = {line.strip() for line in text.splitlines() if line.strip()}
    if not versions:
        return None
    if len(versions) > 1:
        raise ValueError(f"GPUs report different driver versions: {', '.join(sorted(versions))}")
    return versions.pop()


def parse_compute_apps(text: str) -> list[GpuProcess]:
    """``--query-compute-apps=pid,process_name,used_memory --format=csv,noheader``: ``1234, python, 1024 MiB``."""
    processes = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("No running"):
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 2 or not parts[0].isdigit():
            raise ValueError(f"unexpected compute-apps line: {line!r}")
        memory = parts[2].split()[0] if len(parts) > 2 and parts[2] else ""
        processes.append(GpuProcess(pid=int(parts[0]), name=parts[1],
                                    used_memory_mib=int(memory) if memory.isdigit() else None))
    return processes


class _AcceptReadOnly(paramiko.MissingHostKeyPolicy):
    """Accept an unknown host key without saving it: probes only read state; Ansible enforces host keys."""

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        return None


class SshProbe:
    """One host's probe: each call opens (or reuses) an SSH connection and runs one short command."""

    def __init__(self, host: str, connection: Connection, policy: RetryPolicy | None = None) -> None:
        self.host = host
        self.connection = connection
        self.policy = policy or RetryPolicy()
        self._client: paramiko.SSHClient | None = None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> SshProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connect(self) -> paramiko.SSHClient:
        if self._client is not None:
            transport = self._client.get_transport()
            if transport is not None and transport.is_active():
                return self._client
            self.close()
        client = paramiko.SSHClient()
        client.load_system_host_keys()
        # A known host with a changed key still fails (BadHostKeyException); an unknown one is read from.
        client.set_missing_host_key_policy(_AcceptReadOnly())
        try:
            client.connect(
                self.connection.address, port=self.connection.port, username=self.connection.user or "root",
                key_filename=self.connection.private_key_file, timeout=self.policy.connect_timeout_s,
                banner_timeout=self.policy.connect_timeout_s, auth_timeout=self.policy.connect_timeout_s,
                allow_agent=False, look_for_keys=self.connection.private_key_file is None,
            )
        except paramiko.AuthenticationException as exc:  # not transient: retrying will not help
            client.close()
            raise HostUnreachable(self.host, f"SSH authentication failed: {exc}") from exc
        except BaseException:
            client.close()
            raise
        self._client = client
        return client

    def _with_retries(self, action: Callable[[], T]) -> T:
        p = self.policy
        retrying = Retrying(
            stop=stop_after_attempt(p.attempts),
            wait=wait_exponential(multiplier=p.initial_wait_s, max=p.max_wait_s),
            retry=retry_if_exception_type(_TRANSIENT),
            reraise=False,
        )
        try:
            result: T = retrying(self._reset_on_failure, action)
            return result
        except RetryError as exc:
            last = exc.last_attempt.exception()
            reason = _reason(last) if last else "unknown error"
            raise HostUnreachable(self.host, f"{reason} (after {p.attempts} attempts)") from last

    def _reset_on_failure(self, action: Callable[[], T]) -> T:
        try:
            return action()
        except _TRANSIENT:
            self.close()
            raise

    def run(self, argv: list[str]) -> tuple[int, str, str]:
        """Run one command (argv, shell-quoted here) and return (rc, stdout, stderr)."""
        command = shlex.join(argv)

        def once() -> tuple[int, str, str]:
            client = self._connect()
            _, stdout, stderr = client.exec_command(command, timeout=self.policy.command_timeout_s)
            out = stdout.read().decode("utf-8", "replace")
            err = stderr.read().decode("utf-8", "replace")
            return stdout.channel.recv_exit_status(), out, err

        return self._with_retries(once)

    def reachable(self) -> bool:
        rc, _, _ = self.run(["true"])
        return rc == 0

    def boot_id(self) -> str:
        rc, out, err = self.run(["cat", "/proc/sys/kernel/random/boot_id"])
        if rc != 0 or not out.strip():
            raise HostUnreachable(self.host, f"cannot read boot id: {err.strip() or 'empty'}")
        return out.strip()

    def driver_version(self) -> str | None:
        """The driver nvidia-smi reports, or None when it cannot run (no driver, mismatch: see facts)."""
        rc, out, _ = self.run(QUERY_DRIVER)
        return parse_driver_query(out) if rc == 0 else None

    def gpu_processes(self) -> list[GpuProcess]:
        """Processes holding a GPU; an empty list means the node can be drained of GPU users."""
        rc, out, err = self.run(QUERY_APPS)
        if rc != 0:
            raise HostUnreachable(self.host, f"nvidia-smi failed listing GPU processes: {(out + err).strip()}")
        return parse_compute_apps(out)


def probe_many(targets: Iterable[tuple[str, Connection]], action: Callable[[SshProbe], T], *,
               policy: RetryPolicy | None = None, workers: int = 32) -> dict[str, T | HostUnreachable]:
    """Run one probe on many hosts in parallel; each host's answer or the reason it is unreachable."""

    def one(target: tuple[str, Connection]) -> tuple[str, T | HostUnreachable]:
        name, connection = target
        with SshProbe(name, connection, policy) as probe:
            try:
                return name, action(probe)
            except HostUnreachable as exc:
                return name, exc

    items = list(targets)
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(items)))) as pool:
        return dict(pool.map(one, items))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "connection timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        return "connection refused"
    return f"{type(exc).__name__}: {exc}"

