"""Defaults of a PodSpec wherever it appears (pods and pod templates): upstream's
`SetDefaults_PodSpec`, `_Container`, `_Probe`, `_HTTPGetAction`, `_Volume` and the declarative
`+default` markers of k8s.io/api/core/v1."""

from __future__ import annotations

import re
from typing import Any

from kubelite.objects.validation.quantity import try_parse
from kubelite.objects.validation.volumes import VOLUME_SOURCES

Obj = dict[str, Any]

DEFAULT_FILE_MODE = 0o644  # 420, what secret/configMap/downwardAPI/projected volumes default to
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
_SOURCES_WITH_MODE = ("secret", "configMap", "downwardAPI", "projected")
_VOLUME_FIELD_DEFAULTS: dict[str, Obj] = {
    "iscsi": {"iscsiInterface": "default"},
    "rbd": {"pool": "rbd", "user": "admin", "keyring": "/etc/ceph/keyring"},
    "azureDisk": {"cachingMode": "ReadWrite", "fsType": "ext4", "readOnly": False, "kind": "Shared"},
    "scaleIO": {"storageMode": "ThinProvisioned", "fsType": "xfs"},
    "hostPath": {"type": ""},
}
# distribution/reference's grammar, enough to find the tag the way upstream's parser does
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
_REFERENCE = re.compile(rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::(?P<tag>[\w][\w.-]{{0,127}}))?"
                        r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?")


def image_tag(image: str) -> str:
    """The tag upstream's `parsers.ParseImageName` finds: `latest` when there is neither tag nor
    digest, "" when there is only a digest or the reference does not parse."""
    match = _REFERENCE.fullmatch(image)
    if match is None or len(image) > 255:
        return ""
    if match.group("tag"):
        return match.group("tag")
    return "" if match.group("digest") else "latest"


def default_pull_policy(image: str) -> str:
    return "Always" if image_tag(image) == "latest" else "IfNotPresent"


def default_pod_spec(spec: Obj) -> None:
    _fill(spec, "dnsPolicy", "ClusterFirst")
    _fill(spec, "restartPolicy", "Always")
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    _fill(spec, "schedulerName", "default-scheduler")
    _sync_service_account(spec)
    for field in CONTAINER_LISTS:
        for container in items_of(spec.get(field)):
            default_container(container)
    for volume in items_of(spec.get("volumes")):
        default_volume(volume)


def _fill(obj: Obj, key: str, value: Any) -> None:
    """Set `key` when it is missing or the zero value, as Go defaulting of a plain field does."""
    if not obj.get(key):
        obj[key] = value


def items_of(value: Any) -> list[Obj]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _sync_service_account(spec: Obj) -> None:
    # v1's deprecated `serviceAccount` mirrors serviceAccountName (upstream's conversion)
    if not spec.get("serviceAccountName") and spec.get("serviceAccount"):
        spec["serviceAccountName"] = spec["serviceAccount"]
    if spec.get("serviceAccountName"):
        spec["serviceAccount"] = spec["serviceAccountName"]


def default_container(container: Obj) -> None:
    if not container.get("imagePullPolicy"):
        container["imagePullPolicy"] = default_pull_policy(str(container.get("image") or ""))
    _fill(container, "terminationMessagePath", "/dev/termination-log")
    _fill(container, "terminationMessagePolicy", "File")
    if not isinstance(container.get("resources"), dict):
        container["resources"] = {}
    canonicalize_resources(container["resources"])
    for port in items_of(container.get("ports")):
        _fill(port, "protocol", "TCP")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if isinstance(container.get(probe), dict):
            default_probe(container[probe])
    lifecycle = container.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in ("postStart", "preStop"):
            if isinstance(lifecycle.get(hook), dict):
                _default_handler(lifecycle[hook])
    for var in items_of(container.get("env")):
        _default_env_source(var.get("valueFrom"))


def canonicalize_resources(resources: Obj) -> None:
    for field in ("limits", "requests"):
        if isinstance(resources.get(field), dict):
            canonicalize_resource_list(resources[field])


def canonicalize_resource_list(values: Obj) -> None:
    """Quantities as upstream stores them: rounded up to milli units, in canonical form."""
    for name, raw in values.items():
        qty = try_parse(raw)
        if qty is not None:
            values[name] = str(qty.round_up(-3))


def default_probe(probe: Obj) -> None:
    for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1),
                       ("failureThreshold", 3)):
        _fill(probe, key, value)
    _default_handler(probe)


def _default_handler(handler: Obj) -> None:
    http = handler.get("httpGet")
    if isinstance(http, dict):
        _fill(http, "path", "/")
        _fill(http, "scheme", "HTTP")
    grpc = handler.get("grpc")
    if isinstance(grpc, dict) and grpc.get("service") is None:
        grpc["service"] = ""


def _default_env_source(source: Any) -> None:
    if not isinstance(source, dict):
        return
    if isinstance(source.get("fieldRef"), dict):
        _fill(source["fieldRef"], "apiVersion", "v1")
    if isinstance(source.get("resourceFieldRef"), dict) and source["resourceFieldRef"].get("divisor") is None:
        source["resourceFieldRef"]["divisor"] = "0"


def default_volume(volume: Obj) -> None:
    if not any(isinstance(volume.get(source), dict) for source in VOLUME_SOURCES):
        volume["emptyDir"] = {}
    for source in _SOURCES_WITH_MODE:
        if isinstance(volume.get(source), dict) and volume[source].get("defaultMode") is None:
            volume[source]["defaultMode"] = DEFAULT_FILE_MODE
    for source, defaults in _VOLUME_FIELD_DEFAULTS.items():
        if isinstance(volume.get(source), dict):
            for key, value in defaults.items():
                if volume[source].get(key) is None:
                    volume[source][key] = value
    _default_volume_items(volume)


def _default_volume_items(volume: Obj) -> None:
    downward = volume.get("downwardAPI")
    if isinstance(downward, dict):
        for item in items_of(downward.get("items")):
            _default_env_source(item)
    projected = volume.get("projected")
    if isinstance(projected, dict):
        for source in items_of(projected.get("sources")):
            token = source.get("serviceAccountToken")
            if isinstance(token, dict) and token.get("expirationSeconds") is None:
                token["expirationSeconds"] = 3600
            if isinstance(source.get("downwardAPI"), dict):
                for item in items_of(source["downwardAPI"].get("items")):
                    _default_env_source(item)
