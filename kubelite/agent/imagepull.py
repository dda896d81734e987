"""imagePullPolicy against the node's image store (upstream's image manager, without registry
pulls yet).

Before a container starts, `ensure` looks the image up in the store (`ImageStoreAPI.get`, a
blocking call, run in a thread):
- present: event Pulled `Container image "x" already present on machine` (for every policy:
  Always has nowhere to pull from yet, so it uses the local image too);
- absent with policy Never: ErrImageNeverPull `Container image "x" is not present with pull
  policy of Never`;
- absent otherwise: a "pull" that fails at once (ErrImagePull, event Failed `Failed to pull
  image "x": ...`) and starts the image back-off (10 s doubling to 5 min, per pod and image);
  while it runs the container waits with ImagePullBackOff and no pull is tried;
- a reference that does not parse: InvalidImageName.
A kubelet without an image store (hollow nodes) treats every image as present.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubelite.agent.restarts import Backoff
from kubelite.images.api import ImageNotFound, ImageStoreAPI, InvalidImageName

Obj = dict[str, Any]
EventFunc = Callable[[str, str, str], None]  # (type, reason, message) about the container
NOT_PULLABLE = "is not present locally, and pulling images from registries is not available yet"
RETRY = 10.0  # upstream's pod worker back-off after a failed sync


@dataclass(frozen=True)
class PullFailure:
    reason: str  # the container's waiting reason
    message: str
    retry: float  # nominal seconds until it is worth trying again


def pull_policy(container: Obj) -> str:
    policy = container.get("imagePullPolicy")
    if policy:
        return str(policy)
    image = str(container.get("image") or "")
    last = image.rsplit("/", 1)[-1]
    return "Always" if "@" not in image and (":" not in last or last.endswith(":latest")) else "IfNotPresent"


class ImagePuller:
    def __init__(self, store: ImageStoreAPI | None, *, scale: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.backoff = Backoff(scale=scale, clock=clock)
        self._errors: dict[str, str] = {}  # back-off key -> the last pull error

    async def ensure(self, pod_uid: str, container: Obj, event: EventFunc) -> PullFailure | None:
        image = str(container.get("image") or "")
        if self.store is None:
            event("Normal", "Pulled", f'Container image "{image}" already present on machine')
            return None
        try:
            await asyncio.to_thread(self.store.get, image)
        except InvalidImageName as exc:
            message = f'Failed to apply default image tag "{image}": {exc}'
            event("Warning", "InspectFailed", message)
            return PullFailure("InvalidImageName", message, RETRY)
        except ImageNotFound:
            return self.absent(pod_uid, container, event)
        event("Normal", "Pulled", f'Container image "{image}" already present on machine')
        return None

    def absent(self, pod_uid: str, container: Obj, event: EventFunc) -> PullFailure:
        """The image is not in the store (also when the runtime found it missing)."""
        image = str(container.get("image") or "")
        if pull_policy(container) == "Never":
            message = f'Container image "{image}" is not present with pull policy of Never'
            event("Warning", "ErrImageNeverPull", message)
            return PullFailure("ErrImageNeverPull", message, RETRY)
        key = f"{pod_uid}_{image}"
        if self.backoff.in_backoff_since_update(key):
            message = f'Back-off pulling image "{image}"'
            event("Normal", "BackOff", message)
            remaining = self.backoff.remaining_since_update(key) / max(self.backoff.scale, 1e-9)
            return PullFailure("ImagePullBackOff", f"{message}: ErrImagePull: {self._errors.get(key, '')}", remaining)
        event("Normal", "Pulling", f'Pulling image "{image}"')
        error = f'image "{image}" {NOT_PULLABLE}'
        event("Warning", "Failed", f'Failed to pull image "{image}": {error}')
        self.backoff.next(key, self.backoff.clock())
        self._errors[key] = error
        return PullFailure("ErrImagePull", error, self.backoff.get(key))

    def forget(self, pod_uid: str) -> None:
        self.backoff.forget(f"{pod_uid}_")
        for key in [k for k in self._errors if k.startswith(f"{pod_uid}_")]:
            del self._errors[key]
