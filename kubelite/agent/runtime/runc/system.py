"""Thin wrappers over the host: mount/umount/setns through libc (no process per call), running a
command asynchronously, and facts about the agent process (capabilities it holds, its own
oom_score_adj, the machine's memory). Nothing here decides anything.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MNT_DETACH = 2
CLONE_NEWNET = 0x40000000
CAP_SYS_RESOURCE = 24

# capability numbers as the kernel numbers them; runc knows all of these
CAPABILITIES = ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
                "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
                "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
                "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
                "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
                "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
                "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
                "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE")


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(source: str, target: str | Path, fstype: str, *, flags: int = 0, data: str = "") -> None:
    rc = _libc.mount(source.encode(), str(target).encode(), fstype.encode(), flags, data.encode() or None)
    _check(rc, f"mount {fstype} on {target}")


def umount(target: str | Path) -> bool:
    """Lazily unmount `target`; False when nothing was mounted there (or it is gone)."""
    rc = _libc.umount2(str(target).encode(), MNT_DETACH)
    if rc != 0 and ctypes.get_errno() in (errno.EINVAL, errno.ENOENT):
        return False
    _check(rc, f"umount {target}")
    return True


def is_mountpoint(path: str | Path) -> bool:
    target = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo") as f:
            return any(line.split()[4] == target for line in f)
    except OSError:
        return False


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(fd, nstype), "setns")


@dataclass(frozen=True)
class Result:
    rc: int
    stdout: bytes
    stderr: bytes

    def error(self) -> str:
        return (self.stderr or self.stdout).decode(errors="replace").strip()


async def run(argv: Sequence[str], *, stdin: bytes | None = None, env: Mapping[str, str] | None = None,
              timeout: float = 60.0) -> Result:
    """Run a command to completion, its output captured (never for commands that leave daemons
    holding the pipes: those get files or /dev/null)."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=dict(env) if env is not None else None)
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    return Result(proc.returncode if proc.returncode is not None else -1, out, err)


def pid_alive(pid: int, *, cmdline_contains: str = "") -> bool:
    """Whether `pid` runs (not a zombie) and, if given, its command line contains a marker (a
    recycled pid belongs to some other program)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
        if cmdline_contains:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                return cmdline_contains.encode() in f.read()
        return True
    except (OSError, IndexError):
        return False


def _status_field(name: str, path: str = "/proc/self/status") -> str:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(name + ":"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def available_caps() -> list[str]:
    """The capabilities in the agent's bounding set: what runc can grant a container here."""
    mask = int(_status_field("CapBnd") or "0", 16)
    return [name for bit, name in enumerate(CAPABILITIES) if mask & (1 << bit)]


def min_oom_score_adj() -> int:
    """The lowest oom_score_adj runc may set: anything without CAP_SYS_RESOURCE in effect cannot
    go below the agent's own value."""
    if int(_status_field("CapEff") or "0", 16) & (1 << CAP_SYS_RESOURCE):
        return -1000
    try:
        return int(Path("/proc/self/oom_score_adj").read_text().strip())
    except (OSError, ValueError):
        return 0


def memory_capacity() -> int:
    value = _status_field("MemTotal", "/proc/meminfo")
    return int(value.split()[0]) * 1024 if value else 0
