"""A container's environment as the kubelet resolves it (upstream makeEnvironmentVariables).

Data flow: `references` names the ConfigMaps and Secrets a container's env/envFrom read; the
kubelet fetches them (`fetch_sources`, the only I/O here) into `Sources`; `resolve_env` (pure)
then builds the list: envFrom first, in order (keys prefixed, invalid names skipped and reported),
then `env` in order, each `value` `$(VAR)`-expanded against what is defined so far, each
`valueFrom` read from the pod (fieldRef), the container's resources (resourceFieldRef) or a
ConfigMap/Secret key. A later definition replaces an earlier one in place. Service variables
(`service_env`: `<NAME>_SERVICE_HOST`, `<NAME>_PORT_80_TCP`, ... for the `kubernetes` service and,
with enableServiceLinks, the pod's namespace's services) come last unless the container defines
the same name, and `$(VAR)` sees them too.

Errors are upstream's CreateContainerConfigError messages (`EnvError`): a missing object or key
that is not optional. An optional one is skipped.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kubelite.objects.errors import NotFound
from kubelite.objects.validation.quantity import QuantityError, parse_quantity

if TYPE_CHECKING:
    from kubelite.client import Client

Obj = dict[str, Any]
_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class EnvError(Exception):
    """The environment cannot be built (CreateContainerConfigError)."""


@dataclass
class Sources:
    """The ConfigMaps and Secrets a container refers to: name -> data (str values), or None when
    the object does not exist."""

    config_maps: dict[str, dict[str, str] | None] = field(default_factory=dict)
    secrets: dict[str, dict[str, str] | None] = field(default_factory=dict)


@dataclass(frozen=True)
class PodFacts:
    """What the kubelet knows about the pod beyond its object: its addresses and node."""

    pod_ips: tuple[str, ...] = ()
    host_ip: str = ""
    node_allocatable: Mapping[str, str] = field(default_factory=dict)  # for limits left unset


# ----- $(VAR) expansion ------------------------------------------------------------------------------

def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """Upstream's expansion.Expand: `$(NAME)` → its value (left as written when undefined),
    `$$` → `$`, a `$` before anything else stays."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "$" or i + 1 == n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            close = text.find(")", i + 2)
            if close < 0:
                out.append("$(")
                i += 2
                continue
            name = text[i + 2:close]
            value = lookup(name)
            out.append(value if value is not None else f"$({name})")
            i = close + 1
        else:
            out.append("$" + nxt)
            i += 2
    return "".join(out)


# ----- references and fetching ---------------------------------------------------------------------

def references(containers: Iterable[Obj]) -> tuple[set[str], set[str]]:
    """(ConfigMap names, Secret names) the containers' env and envFrom read."""
    maps: set[str] = set()
    secrets: set[str] = set()
    for c in containers:
        for source in c.get("envFrom") or []:
            if (source.get("configMapRef") or {}).get("name"):
                maps.add(source["configMapRef"]["name"])
            if (source.get("secretRef") or {}).get("name"):
                secrets.add(source["secretRef"]["name"])
        for var in c.get("env") or []:
            ref = var.get("valueFrom") or {}
            if (ref.get("configMapKeyRef") or {}).get("name"):
                maps.add(ref["configMapKeyRef"]["name"])
            if (ref.get("secretKeyRef") or {}).get("name"):
                secrets.add(ref["secretKeyRef"]["name"])
    return maps, secrets


def config_map_data(obj: Obj) -> dict[str, str]:
    data = {str(k): str(v) for k, v in (obj.get("data") or {}).items()}
    for key, value in (obj.get("binaryData") or {}).items():
        data.setdefault(str(key), _b64(value).decode("utf-8", "replace"))
    return data


def secret_data(obj: Obj) -> dict[str, str]:
    data = {str(k): _b64(v).decode("utf-8", "replace") for k, v in (obj.get("data") or {}).items()}
    data.update({str(k): str(v) for k, v in (obj.get("stringData") or {}).items()})
    return data


def _b64(value: Any) -> bytes:
    try:
        return base64.b64decode(str(value or ""), validate=False)
    except (binascii.Error, ValueError):
        return b""


async def fetch_sources(client: Client, namespace: str, config_maps: Iterable[str],
                        secrets: Iterable[str]) -> Sources:
    # imported here: the image builder uses this module's expansion without the API client (aiohttp)
    from kubelite.client.resources import CONFIGMAPS, SECRETS

    sources = Sources()
    for name in sorted(set(config_maps)):
        try:
            sources.config_maps[name] = config_map_data(await client.get(CONFIGMAPS, name, namespace))
        except NotFound:
            sources.config_maps[name] = None
    for name in sorted(set(secrets)):
        try:
            sources.secrets[name] = secret_data(await client.get(SECRETS, name, namespace))
        except NotFound:
            sources.secrets[name] = None
    return sources


# ----- values from the pod and the container ---------------------------------------------------------

def field_value(pod: Obj, path: str, facts: PodFacts) -> str:
    """A fieldRef's value (env form: labels/annotations only by key)."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    match = _SUBSCRIPT.match(path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    simple = {
        "metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": facts.host_ip, "status.hostIPs": facts.host_ip,
        "status.podIP": facts.pod_ips[0] if facts.pod_ips else "",
        "status.podIPs": ",".join(facts.pod_ips),
    }
    if path not in simple:
        raise EnvError(f"unsupported fieldRef {path!r}")
    return str(simple[path] or "")


def resource_value(pod: Obj, ref: Obj, facts: PodFacts, *, default_container: str = "") -> str:
    """A resourceFieldRef's value: the quantity divided by the divisor, rounded up (cpu in
    cores by default); a limit left unset is the node's allocatable amount."""
    name = str(ref.get("containerName") or default_container)
    spec = pod.get("spec") or {}
    containers = [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]
    container = next((c for c in containers if c.get("name") == name), None)
    if container is None:
        raise EnvError(f'container "{name}" not found for resourceFieldRef')
    resource = str(ref.get("resource") or "")
    kind, _, what = resource.partition(".")
    resources = container.get("resources") or {}
    value = (resources.get(kind) or {}).get(what)
    if value is None and kind == "limits":
        value = facts.node_allocatable.get(what)
    try:
        quantity = parse_quantity(value if value is not None else "0").value
        divisor = parse_quantity(ref.get("divisor") or "1").value
    except QuantityError as exc:
        raise EnvError(f"invalid quantity for {resource}: {exc}") from None
    if divisor <= 0:
        raise EnvError(f"invalid divisor for {resource}")
    return str(math.ceil(quantity / divisor))


# ----- the environment -----------------------------------------------------------------------------

def _valid_name(name: str) -> bool:
    # RelaxedEnvironmentVariableValidation (GA): any printable ASCII but '='
    return bool(name) and all(32 <= ord(ch) < 127 for ch in name) and "=" not in name


def _from_object(kind: str, name: str, objects: Mapping[str, dict[str, str] | None], *,
                 optional: bool) -> dict[str, str] | None:
    data = objects.get(name)
    if data is None and not optional:
        raise EnvError(f'{kind.lower()} "{name}" not found')
    return data


def _env_from(container: Obj, sources: Sources, env: dict[str, str]) -> list[str]:
    skipped: list[str] = []
    for source in container.get("envFrom") or []:
        prefix = str(source.get("prefix") or "")
        for kind, field_name, objects in (("ConfigMap", "configMapRef", sources.config_maps),
                                          ("Secret", "secretRef", sources.secrets)):
            ref = source.get(field_name)
            if not ref:
                continue
            data = _from_object(kind, str(ref.get("name")), objects, optional=bool(ref.get("optional")))
            for key, value in (data or {}).items():
                if _valid_name(prefix + key):
                    env[prefix + key] = value
                else:
                    skipped.append(prefix + key)
    return skipped


def _key_ref(kind: str, ref: Obj, objects: Mapping[str, dict[str, str] | None], namespace: str) -> str | None:
    name, key, optional = str(ref.get("name")), str(ref.get("key")), bool(ref.get("optional"))
    data = _from_object(kind, name, objects, optional=optional)
    if data is None:
        return None
    if key not in data:
        if optional:
            return None
        raise EnvError(f"couldn't find key {key} in {kind} {namespace}/{name}")
    return data[key]


def _value_from(pod: Obj, container: Obj, ref: Obj, sources: Sources, facts: PodFacts) -> str | None:
    namespace = str((pod.get("metadata") or {}).get("namespace") or "")
    if "fieldRef" in ref:
        return field_value(pod, str(ref["fieldRef"].get("fieldPath") or ""), facts)
    if "resourceFieldRef" in ref:
        return resource_value(pod, ref["resourceFieldRef"], facts, default_container=str(container.get("name")))
    if "configMapKeyRef" in ref:
        return _key_ref("ConfigMap", ref["configMapKeyRef"], sources.config_maps, namespace)
    if "secretKeyRef" in ref:
        return _key_ref("Secret", ref["secretKeyRef"], sources.secrets, namespace)
    raise EnvError("unsupported valueFrom source")


def resolve_env(pod: Obj, container: Obj, sources: Sources, facts: PodFacts, *,
                services: Mapping[str, str] | None = None) -> tuple[list[tuple[str, str]], list[str]]:
    """(the container's environment, names envFrom skipped as invalid). Raises EnvError."""
    env: dict[str, str] = {}
    services = services or {}
    skipped = _env_from(container, sources, env)
    for var in container.get("env") or []:
        name = str(var.get("name"))
        ref = var.get("valueFrom")
        if ref:
            value = _value_from(pod, container, ref, sources, facts)
            if value is None:
                continue  # an optional reference to something missing
        else:
            value = expand(str(var.get("value") or ""), lambda key: env.get(key, services.get(key)))
        env[name] = value
    return [*env.items(), *((k, v) for k, v in services.items() if k not in env)], skipped


# ----- service links -------------------------------------------------------------------------------

MASTER_SERVICES = ("kubernetes",)


def _cluster_ip(service: Obj) -> str:
    ip = str((service.get("spec") or {}).get("clusterIP") or "")
    return "" if ip in ("", "None") else ip


def service_env(services: Iterable[Obj], *, namespace: str, enable_links: bool) -> dict[str, str]:
    """upstream envvars.FromServices over the services a pod sees: the master service from
    `default` always, the pod's namespace's with enableServiceLinks; sorted by service name."""
    chosen: dict[str, Obj] = {}
    for service in services:
        meta = service.get("metadata") or {}
        name = str(meta.get("name") or "")
        if not _cluster_ip(service):
            continue
        if meta.get("namespace") == "default" and name in MASTER_SERVICES:
            chosen.setdefault(name, service)
        elif meta.get("namespace") == namespace and enable_links:
            chosen[name] = service
    env: dict[str, str] = {}
    for name in sorted(chosen):
        env.update(_one_service(name, chosen[name]))
    return env


def _one_service(name: str, service: Obj) -> dict[str, str]:
    prefix = name.upper().replace("-", "_")
    ip = _cluster_ip(service)
    host = f"[{ip}]" if ":" in ip else ip
    ports = (service.get("spec") or {}).get("ports") or []
    env = {f"{prefix}_SERVICE_HOST": ip}
    if not ports:
        return env
    env[f"{prefix}_SERVICE_PORT"] = str(ports[0].get("port"))
    for port in ports:
        if port.get("name"):
            env[f"{prefix}_SERVICE_PORT_{str(port['name']).upper().replace('-', '_')}"] = str(port.get("port"))
    first = ports[0]
    env[f"{prefix}_PORT"] = f"{str(first.get('protocol') or 'TCP').lower()}://{host}:{first.get('port')}"
    for port in ports:
        protocol = str(port.get("protocol") or "TCP")
        base = f"{prefix}_PORT_{port.get('port')}_{protocol.upper()}"
        env[base] = f"{protocol.lower()}://{host}:{port.get('port')}"
        env[f"{base}_PROTO"] = protocol.lower()
        env[f"{base}_PORT"] = str(port.get("port"))
        env[f"{base}_ADDR"] = ip
    return env


def skipped_message(container: Obj, skipped: list[str]) -> str:
    return (f"Keys [{', '.join(sorted(skipped))}] from the EnvFrom of container {container.get('name')} "
            "were skipped since they are considered invalid environment variable names.")
