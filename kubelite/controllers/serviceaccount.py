"""The serviceaccount controller: every active namespace has a `default` ServiceAccount.

Flow: namespace adds and updates enqueue the namespace; deleting a managed ServiceAccount
enqueues its namespace. `sync` reads both caches and creates what is missing. Creation races are
harmless: AlreadyExists means someone (or an earlier pass our cache has not seen yet) made it, and
Forbidden/NotFound mean the namespace is terminating or gone, so there is nothing to ensure.
As upstream since 1.24, no token Secret is created for the account.
"""

from __future__ import annotations

from typing import Any

from kubelite.client import Handlers
from kubelite.client.resources import NAMESPACES, SERVICEACCOUNTS
from kubelite.controllers.base import Controller
from kubelite.objects.errors import AlreadyExists, Forbidden, NotFound

Obj = dict[str, Any]
MANAGED_ACCOUNTS = ("default",)


def is_active(namespace: Obj | None) -> bool:
    if namespace is None or (namespace.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return (namespace.get("status") or {}).get("phase", "Active") == "Active"


class ServiceAccountController(Controller):
    name = "serviceaccount"

    def setup(self) -> None:
        self.namespaces = self.informers.informer(NAMESPACES)
        self.accounts = self.informers.informer(SERVICEACCOUNTS)
        self.namespaces.add_handlers(Handlers(on_add=self.enqueue, on_update=lambda old, new: self.enqueue(new)))
        self.accounts.add_handlers(Handlers(on_delete=self._account_gone))

    def _account_gone(self, account: Obj) -> None:
        meta = account.get("metadata") or {}
        if meta.get("name") in MANAGED_ACCOUNTS and meta.get("namespace"):
            self.queue.add(str(meta["namespace"]))

    async def sync(self, key: str) -> None:
        if not is_active(self.namespaces.get(key)):
            return
        for name in MANAGED_ACCOUNTS:
            if self.accounts.get(f"{key}/{name}") is not None:
                continue
            try:
                await self.client.create(SERVICEACCOUNTS, {"apiVersion": "v1", "kind": "ServiceAccount",
                                                           "metadata": {"name": name, "namespace": key}}, key)
            except (AlreadyExists, Forbidden, NotFound):
                continue
