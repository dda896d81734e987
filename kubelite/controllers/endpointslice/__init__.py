"""EndpointSlice controller (discovery.k8s.io/v1): `controller` runs it, `reconciler` plans slice
changes, `tracker` guards against stale caches, `util` holds the pod/service rules it shares
with the Endpoints controller."""

from kubelite.controllers.endpointslice.controller import EndpointSliceController

__all__ = ["EndpointSliceController"]
