"""Namespaces a pod owns without a process: a named network namespace (`ip netns add`, so
`ip netns` and the CNI plugins see it at /var/run/netns/<name>), and IPC and UTS namespaces that
`unshare --ipc=<file> --uts=<file> hostname <name>` creates and keeps alive by bind-mounting them
on files in the pod's directory (the hostname is set once, in the new UTS namespace). Containers
join all three by path; they live until the sandbox is removed, whichever containers come and go.

Also: TCP connections from inside a pod's network namespace for port-forward. A socket belongs to
the namespace it was created in, so a dedicated thread enters the namespace (setns), creates the
socket and returns to the agent's namespace; the connection itself then runs on the event loop.
"""

from __future__ import annotations

import asyncio
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kubelite.agent.runtime.runc import system

NETNS_DIR = Path("/var/run/netns")


class NamespaceError(Exception):
    pass


def netns_path(name: str) -> Path:
    return NETNS_DIR / name


async def add_netns(name: str) -> Path:
    path = netns_path(name)
    if system.is_mountpoint(path):
        return path  # left by an interrupted attempt; CNI ADD treats it as new
    result = await system.run(["ip", "netns", "add", name])
    if result.rc != 0:
        raise NamespaceError(f"ip netns add {name}: {result.error()}")
    return path


async def delete_netns(name: str) -> None:
    path = netns_path(name)
    if not path.exists():
        return
    result = await system.run(["ip", "netns", "delete", name])
    if result.rc != 0 and path.exists():
        # `ip netns delete` fails on a file that is not a mount (a crash between touch and mount)
        system.umount(path)
        path.unlink(missing_ok=True)


async def create_pod_namespaces(*, ipc: Path | None, uts: Path | None, hostname: str) -> None:
    """New IPC and/or UTS namespaces bind-mounted on `ipc` / `uts`; `hostname` set in the UTS one."""
    if ipc is None and uts is None:
        return
    argv = ["unshare"]
    for flag, path in (("--ipc", ipc), ("--uts", uts)):
        if path is not None:
            release_ns_file(path)
            path.touch()
            argv.append(f"{flag}={path}")
    argv += ["hostname", hostname] if uts is not None and hostname else ["true"]
    result = await system.run(argv)
    if result.rc != 0:
        raise NamespaceError(f"creating the pod's IPC/UTS namespaces: {result.error()}")


def release_ns_file(path: Path) -> None:
    """Unmount a namespace file (the namespace dies with its last user) and remove it."""
    if path.exists():
        system.umount(path)
        path.unlink(missing_ok=True)


class NetnsDialer:
    """Opens TCP connections from inside network namespaces (one worker thread does the setns)."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="netns-dialer")

    async def connect(self, netns: Path | None, host: str, port: int) -> tuple[asyncio.StreamReader,
                                                                                 asyncio.StreamWriter]:
        if netns is None:
            return await asyncio.open_connection(host, port)
        loop = asyncio.get_running_loop()
        try:
            sock = await loop.run_in_executor(self._executor, _socket_in, str(netns))
        except _StuckThread:
            self._executor.shutdown(wait=False)
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="netns-dialer")
            raise NamespaceError("could not return to the agent's network namespace") from None
        try:
            await loop.sock_connect(sock, (host, port))
        except BaseException:
            sock.close()
            raise
        return await asyncio.open_connection(sock=sock)

    def close(self) -> None:
        self._executor.shutdown(wait=False)


class _StuckThread(Exception):
    """The worker thread entered a namespace and could not leave it."""


def _socket_in(netns: str) -> socket.socket:
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            system.setns(target, system.CLONE_NEWNET)
        finally:
            os.close(target)
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            return sock
        finally:
            try:
                system.setns(own, system.CLONE_NEWNET)
            except OSError:
                raise _StuckThread() from None
    finally:
        os.close(own)
