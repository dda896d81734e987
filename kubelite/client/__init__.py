"""Talking to the API as kubectl does: REST client, informers, work queue, event recorder."""

from kubelite.client.informer import Handlers, Informer, InformerFactory, object_key
from kubelite.client.rest import Client, Connection
from kubelite.client.workqueue import WorkQueue, run_workers

__all__ = ["Client", "Connection", "Handlers", "Informer", "InformerFactory", "WorkQueue", "object_key",
           "run_workers"]
