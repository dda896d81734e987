"""The OCI `process` of a container, computed purely from the pod, the container, the image config
and (for user names) the text of the image's /etc/passwd and /etc/group.

- args: upstream's merge of command/args with the image's Entrypoint/Cmd (command replaces
  Entrypoint and drops Cmd; args replace Cmd), after `$(VAR)` expansion against the container's
  environment as the kubelet expands it (`$$` escapes, unknown references stay as written);
- env: HOSTNAME, then the image's Env, then the container's (already resolved by the kubelet, so
  `valueFrom` never reaches us); a later name replaces an earlier one in place, as containerd does;
- user: runAsUser/runAsGroup (container over pod), else the image's User (`uid`, `name`,
  `uid:gid`, `name:group`), names looked up in the rootfs; the primary gid of a bare uid comes
  from /etc/passwd, else 0; supplementary groups: the primary gid, the user's /etc/group
  memberships (not with supplementalGroupsPolicy Strict), supplementalGroups and fsGroup;
- capabilities: containerd's default set, adjusted by securityContext add/drop ("ALL" first),
  or everything the runtime itself holds when privileged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kubelite.agent.env import expand

Obj = dict[str, Any]
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_CAPS = ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
                "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
                "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE")


class SpecError(Exception):
    """The container cannot be configured (upstream's CreateContainerConfigError); the message is
    meant for the pod's status."""


# ----- command and args ----------------------------------------------------------------------------


def merge_args(container: Obj, image_config: Obj, env: Mapping[str, str]) -> list[str]:
    """The process argv: the table in upstream's "Define a Command and Arguments" docs."""
    command = [str(c) for c in container.get("command") or []]
    args = [str(a) for a in container.get("args") or []]
    entrypoint = [str(e) for e in image_config.get("Entrypoint") or []]
    cmd = [str(c) for c in image_config.get("Cmd") or []]
    if command:
        argv = [expand(c, env.get) for c in command] + [expand(a, env.get) for a in args]
    elif args:
        argv = entrypoint + [expand(a, env.get) for a in args]
    else:
        argv = entrypoint + cmd
    if not argv:
        raise SpecError("no command specified")
    return argv


# ----- environment ---------------------------------------------------------------------------------


def merge_env(image_env: Sequence[str], env: Sequence[tuple[str, str]], *, hostname: str, tty: bool) -> list[str]:
    """`NAME=value` strings: HOSTNAME, image Env, container env; later names override in place."""
    merged: dict[str, str] = {}
    if hostname:
        merged["HOSTNAME"] = hostname
    for item in image_env:
        name, _, value = str(item).partition("=")
        merged[name] = value
    for name, value in env:
        merged[name] = value
    if "PATH" not in merged:
        merged = {"PATH": DEFAULT_PATH.split("=", 1)[1], **merged}
    if tty and "TERM" not in merged:
        merged["TERM"] = "xterm"
    return [f"{k}={v}" for k, v in merged.items()]


# ----- user ----------------------------------------------------------------------------------------


def _table(text: str | None) -> list[list[str]]:
    rows = []
    for line in (text or "").splitlines():
        if line and not line.startswith("#"):
            rows.append(line.split(":"))
    return rows


def _passwd_by(passwd: str | None, *, name: str | None = None, uid: int | None = None) -> list[str] | None:
    for row in _table(passwd):
        if len(row) >= 4 and ((name is not None and row[0] == name) or (uid is not None and row[2] == str(uid))):
            return row
    return None


def _group_gid(group: str | None, name: str) -> int | None:
    for row in _table(group):
        if len(row) >= 3 and row[0] == name and row[2].isdigit():
            return int(row[2])
    return None


def _member_gids(group: str | None, user_name: str) -> list[int]:
    gids = []
    for row in _table(group):
        if len(row) >= 4 and row[2].isdigit() and user_name in row[3].split(","):
            gids.append(int(row[2]))
    return gids


def _security(pod: Obj, container: Obj, field: str) -> Any:
    own = (container.get("securityContext") or {}).get(field)
    return own if own is not None else ((pod.get("spec") or {}).get("securityContext") or {}).get(field)


def _parse_image_user(user: str, passwd: str | None, group: str | None) -> tuple[int, int | None]:
    """(uid, gid or None) from an image User string; names must exist in the rootfs."""
    user_part, _, group_part = user.partition(":")
    if user_part.isdigit():
        uid = int(user_part)
    else:
        row = _passwd_by(passwd, name=user_part)
        if row is None:
            raise SpecError(f'unable to find user {user_part}: no matching entries in passwd file')
        uid = int(row[2])
    if not group_part:
        return uid, None
    if group_part.isdigit():
        return uid, int(group_part)
    gid = _group_gid(group, group_part)
    if gid is None:
        raise SpecError(f'unable to find group {group_part}: no matching entries in group file')
    return uid, gid


def resolve_user(pod: Obj, container: Obj, image_config: Obj, *, passwd: str | None, group: str | None) -> Obj:
    """The OCI `process.user` ({uid, gid, additionalGids})."""
    run_as_user, run_as_group = _security(pod, container, "runAsUser"), _security(pod, container, "runAsGroup")
    gid: int | None = None
    if run_as_user is not None:
        uid = int(run_as_user)
    else:
        uid, gid = _parse_image_user(str(image_config.get("User") or "").strip() or "0", passwd, group)
    if run_as_group is not None:
        gid = int(run_as_group)
    row = _passwd_by(passwd, uid=uid)
    if gid is None:
        gid = int(row[3]) if row is not None and row[3].isdigit() else 0
    pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
    strict = pod_sc.get("supplementalGroupsPolicy") == "Strict"
    groups = [gid] + (_member_gids(group, row[0]) if row is not None and not strict else [])
    groups += [int(g) for g in pod_sc.get("supplementalGroups") or []]
    if pod_sc.get("fsGroup") is not None:
        groups.append(int(pod_sc["fsGroup"]))
    user: Obj = {"uid": uid, "gid": gid, "additionalGids": list(dict.fromkeys(groups))}
    if _security(pod, container, "runAsNonRoot") and uid == 0:
        name = (pod.get("metadata") or {}).get("name", "")
        raise SpecError(f'container has runAsNonRoot and image will run as root (pod: "{name}", '
                        f'container: {container.get("name")})')
    return user


# ----- capabilities --------------------------------------------------------------------------------


def _cap(name: str) -> str:
    name = str(name).upper()
    return name if name.startswith("CAP_") else f"CAP_{name}"


def capabilities(container: Obj, *, available: Sequence[str]) -> list[str]:
    """The capability set (bounding = permitted = effective); `available`: what the runtime holds,
    the set a privileged container (or `add: [ALL]`) gets and no container can exceed."""
    sc = container.get("securityContext") or {}
    if sc.get("privileged"):
        return list(available)
    caps = sc.get("capabilities") or {}
    add = [str(c).upper() for c in caps.get("add") or []]
    drop = [str(c).upper() for c in caps.get("drop") or []]
    result = list(available) if "ALL" in add else [c for c in DEFAULT_CAPS if c in available]
    if "ALL" in drop:
        result = []
    for name in add:
        if name != "ALL" and _cap(name) in available and _cap(name) not in result:
            result.append(_cap(name))
    dropped = {_cap(n) for n in drop if n != "ALL"}
    return [c for c in result if c not in dropped]


def no_new_privileges(container: Obj) -> bool:
    sc = container.get("securityContext") or {}
    return sc.get("allowPrivilegeEscalation") is False and not sc.get("privileged")
