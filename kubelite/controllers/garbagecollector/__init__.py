"""The garbage collector (upstream's pkg/controller/garbagecollector), in four parts:

- `kinds`: which resources are tracked and how an ownerReference resolves to one;
- `graph`: the ownership graph built from informer events (pure);
- `decide`: what to do with one object given its owners' live state (pure);
- `controller`: the `GarbageCollector` controller, which does the reads and guarded writes.
"""

from kubelite.controllers.garbagecollector.controller import GarbageCollector

__all__ = ["GarbageCollector"]
