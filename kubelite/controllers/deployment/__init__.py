"""The Deployment controller (upstream pkg/controller/deployment), one module per responsibility:

- `controller`: informer handlers and the top of sync (what kind of step this is);
- `sync`: finding/creating the new RS and its revision, scaling, history clean-up, plain status;
- `rolling`, `recreate`: the two strategies; `rollback`: the deprecated rollback annotation;
- `progress`: writing the rollout status, requeueing at the progress deadline;
- `status`: pure status and condition computation; `util`: pure hashing, fenceposts, revisions;
- `context`: the per-sync working copy through which every write goes.
"""

from kubelite.controllers.deployment.controller import DeploymentController

__all__ = ["DeploymentController"]
