"""imagePullPolicy against the node's image store, and pulls from registries (upstream's image
manager).

Before a container starts, `ensure` decides (`plan`, pure) and acts:
- a reference that does not parse: InvalidImageName;
- Never: present, event Pulled `Container image "x" already present on machine`; absent,
  ErrImageNeverPull `Container image "x" is not present with pull policy of Never`;
- IfNotPresent with the image present: Pulled `... already present on machine`;
- otherwise (Always, or absent): while the image back-off runs (10 s doubling to 5 min, per pod and
  image) the container waits with ImagePullBackOff (event BackOff) and nothing is tried; else
  event Pulling `Pulling image "x"` and a pull with the pod's imagePullSecrets (read through the
  API; missing ones give upstream's FailedToRetrieveImagePullSecret warning) before the node's
  own credentials. Success: Pulled `Successfully pulled image "x" in 1.2s (1.5s including
  waiting). Image size: N bytes.` Failure: Failed `Failed to pull image "x": ...`, ErrImagePull,
  and the back-off starts. Pulls run one at a time per node (upstream's serializeImagePulls
  default), so "including waiting" counts the queue.
With Always and the image present, a registry that cannot be reached at all (no route, no DNS)
leaves the local image in use, with a Pulled event saying so: a node without internet still runs
the images loaded into it, where upstream would fail the pull.

The pulls themselves are the store's (`PullingStore`, e.g. `kubelite.images.distribution.node.
NodeImages`: asynchronous network I/O, disk work in threads, so the event loop never blocks). A
store that cannot pull (test stubs) fails absent images at once, saying pulls are unavailable; a
kubelet without a store (hollow nodes) treats every image as present.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from kubelite.agent.restarts import Backoff
from kubelite.images.api import ImageNotFound, ImageRecord, ImageStoreAPI, InvalidImageName

if TYPE_CHECKING:
    from kubelite.client import Client

log = logging.getLogger(__name__)
Obj = dict[str, Any]
EventFunc = Callable[[str, str, str], None]  # (type, reason, message) about the container
NOT_PULLABLE = "is not present locally, and pulling images from registries is not available yet"
RETRY = 10.0  # upstream's pod worker back-off after a failed sync
VANISHED_RETRY = 1.0  # the image was removed between the pull and the container's start


@dataclass(frozen=True)
class PullFailure:
    reason: str  # the container's waiting reason
    message: str
    retry: float  # nominal seconds until it is worth trying again


class Pulled(Protocol):
    @property
    def record(self) -> ImageRecord: ...


@runtime_checkable
class PullingStore(Protocol):
    """An image store the kubelet can pull into."""

    def get(self, reference: str) -> ImageRecord: ...

    def list(self) -> list[ImageRecord]: ...

    async def pull(self, reference: str, *, secrets: Sequence[Obj] = ()) -> Pulled: ...


def pull_policy(container: Obj) -> str:
    policy = container.get("imagePullPolicy")
    if policy:
        return str(policy)
    image = str(container.get("image") or "")
    last = image.rsplit("/", 1)[-1]
    return "Always" if "@" not in image and (":" not in last or last.endswith(":latest")) else "IfNotPresent"


def plan(policy: str, present: bool) -> str:
    """"use" the local image, "never" (ErrImageNeverPull), or "pull"."""
    if policy == "Never":
        return "use" if present else "never"
    if present and policy != "Always":
        return "use"
    return "pull"


def pull_duration(seconds: float) -> str:
    """Go's time.Duration.String of a duration truncated to milliseconds: 512ms, 1.2s, 1m2.5s."""
    ms = int(max(seconds, 0) * 1000)
    if ms < 1000:
        return f"{ms}ms" if ms else "0s"
    minutes, rest = divmod(ms, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


class ImagePuller:
    def __init__(self, store: ImageStoreAPI | None, *, scale: float = 1.0, client: Client | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.client = client
        self.backoff = Backoff(scale=scale, clock=clock)
        self._errors: dict[str, str] = {}  # back-off key -> the last pull error
        self._serial = asyncio.Semaphore(1)

    @property
    def can_pull(self) -> bool:
        return isinstance(self.store, PullingStore)

    async def ensure(self, pod_uid: str, container: Obj, event: EventFunc, *, pod: Obj | None = None) -> PullFailure | None:
        image = str(container.get("image") or "")
        if self.store is None:
            event("Normal", "Pulled", f'Container image "{image}" already present on machine')
            return None
        try:
            await asyncio.to_thread(self.store.get, image)
            present = True
        except InvalidImageName as exc:
            message = f'Failed to apply default image tag "{image}": {exc}'
            event("Warning", "InspectFailed", message)
            return PullFailure("InvalidImageName", message, RETRY)
        except ImageNotFound:
            present = False
        action = plan(pull_policy(container), present)
        if action == "use" or (present and not self.can_pull):  # Always has nowhere to pull from
            event("Normal", "Pulled", f'Container image "{image}" already present on machine')
            return None
        if action == "pull" and self.can_pull:
            return await self._pull(pod_uid, image, event, pod=pod, present=present)
        return self.absent(pod_uid, container, event)

    def absent(self, pod_uid: str, container: Obj, event: EventFunc) -> PullFailure:
        """The image is not in the store and cannot be pulled (also when the runtime found it missing)."""
        image = str(container.get("image") or "")
        if pull_policy(container) == "Never":
            message = f'Container image "{image}" is not present with pull policy of Never'
            event("Warning", "ErrImageNeverPull", message)
            return PullFailure("ErrImageNeverPull", message, RETRY)
        if self.can_pull:  # removed between our pull and the start: the next sync pulls again
            return PullFailure("ErrImagePull", f'image "{image}" was removed from the node before its container '
                                               "started", VANISHED_RETRY)
        backoff = self._in_backoff(pod_uid, image, event)
        if backoff is not None:
            return backoff
        event("Normal", "Pulling", f'Pulling image "{image}"')
        return self._failed(pod_uid, image, event, f'image "{image}" {NOT_PULLABLE}')

    def forget(self, pod_uid: str) -> None:
        self.backoff.forget(f"{pod_uid}_")
        for key in [k for k in self._errors if k.startswith(f"{pod_uid}_")]:
            del self._errors[key]

    # -- pulls -------------------------------------------------------------------------------------

    async def _pull(self, pod_uid: str, image: str, event: EventFunc, *, pod: Obj | None,
                    present: bool) -> PullFailure | None:
        backoff = self._in_backoff(pod_uid, image, event)
        if backoff is not None:
            return backoff
        assert isinstance(self.store, PullingStore)
        event("Normal", "Pulling", f'Pulling image "{image}"')
        secrets = await self._secrets(pod, event)
        requested = time.monotonic()
        async with self._serial:
            started = time.monotonic()
            try:
                pulled = await self.store.pull(image, secrets=secrets)
            except Exception as exc:  # any failure is the pod's ErrImagePull, never the worker's crash
                from kubelite.images.distribution.errors import RegistryUnreachable

                if present and isinstance(exc, RegistryUnreachable):
                    log.warning("pull of %s: %s; using the local image", image, exc)
                    event("Normal", "Pulled", f'Container image "{image}" already present on machine '
                                              f"(the registry is unreachable: {exc})")
                    return None
                if not _expected(exc):
                    log.exception("pull of %s failed unexpectedly", image)
                return self._failed(pod_uid, image, event, pull_error(image, exc))
        done = time.monotonic()
        event("Normal", "Pulled", f'Successfully pulled image "{image}" in {pull_duration(done - started)} '
                                  f"({pull_duration(done - requested)} including waiting). "
                                  f"Image size: {pulled.record.size} bytes.")
        return None

    async def _secrets(self, pod: Obj | None, event: EventFunc) -> list[Obj]:
        """The pod's imagePullSecrets that exist (upstream warns about the others and goes on)."""
        names = [str(s.get("name")) for s in ((pod or {}).get("spec") or {}).get("imagePullSecrets") or []
                 if isinstance(s, dict) and s.get("name")]
        if not names or self.client is None:
            return []
        from kubelite.client.resources import SECRETS

        namespace = str((pod or {}).get("metadata", {}).get("namespace") or "default")
        found, missing = [], []
        for name in names:
            try:
                found.append(await self.client.get(SECRETS, name, namespace))
            except Exception as exc:  # NotFound, or the API unreachable: upstream carries on without it
                log.debug("imagePullSecret %s/%s: %s", namespace, name, exc)
                missing.append(name)
        if missing:
            event("Warning", "FailedToRetrieveImagePullSecret",
                  f"Unable to retrieve some image pull secrets ({', '.join(missing)}); attempting to pull the image "
                  "may not succeed.")
        return found

    def _in_backoff(self, pod_uid: str, image: str, event: EventFunc) -> PullFailure | None:
        key = f"{pod_uid}_{image}"
        if not self.backoff.in_backoff_since_update(key):
            return None
        message = f'Back-off pulling image "{image}"'
        event("Normal", "BackOff", message)
        remaining = self.backoff.remaining_since_update(key) / max(self.backoff.scale, 1e-9)
        return PullFailure("ImagePullBackOff", f"{message}: ErrImagePull: {self._errors.get(key, '')}", remaining)

    def _failed(self, pod_uid: str, image: str, event: EventFunc, error: str) -> PullFailure:
        key = f"{pod_uid}_{image}"
        event("Warning", "Failed", f'Failed to pull image "{image}": {error}')
        self.backoff.next(key, self.backoff.clock())
        self._errors[key] = error
        # retried after the pod worker's period, not the back-off: the syncs in between show
        # ImagePullBackOff, as upstream's pods alternate between the two reasons
        return PullFailure("ErrImagePull", error, RETRY)


def pull_error(image: str, exc: BaseException) -> str:
    """containerd's wording: `failed to pull and unpack image "N": failed to resolve reference
    "N": N: not found` (resolution failures), or the error after the first part."""
    from kubelite.images.distribution.errors import AuthError, NotFound
    from kubelite.images.reference import normalize

    try:
        name = normalize(image)
    except InvalidImageName:
        name = image
    text = f'failed to pull and unpack image "{name}": '
    if isinstance(exc, NotFound | AuthError):
        text += f'failed to resolve reference "{name}": '
    return text + (str(exc) or type(exc).__name__)


def _expected(exc: BaseException) -> bool:
    from kubelite.images.blobs import DigestMismatch
    from kubelite.images.distribution.errors import DistributionError
    from kubelite.images.layers import LayerError
    from kubelite.images.oci import ImageFormatError

    return isinstance(exc, DistributionError | DigestMismatch | ImageFormatError | LayerError | ValueError | OSError)
