"""The DICOM network listener: a C-STORE SCP that feeds the ingest pipeline.

One :class:`~anonymizer.models.IngestBatch` (source LISTENER) per association, created at
its first C-STORE so that a C-ECHO alone leaves no empty batch. Each received instance is
encoded as a Part 10 file from the bytes the peer sent (never decoded and re-encoded on
the way in) and added with :func:`anonymizer.services.batch_add`, exactly like an upload.

Item names are ``association-N-M.dcm`` (listener-wide association number, store number in
that association): nothing read from the file goes into names, logs or status comments.
Handlers run in pynetdicom's association threads, so each one opens and closes its own
database connection like a Django request does.
"""

from __future__ import annotations

import itertools
import logging
import threading
import weakref
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connections
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]  # generated at import time
from pynetdicom.transport import ThreadedAssociationServer

from anonymizer import services
from anonymizer.intake import Incoming
from anonymizer.models import IngestBatch, Source
from anonymizer.processing import InputError, read_checked
from workbench.models import Project

logger = logging.getLogger(__name__)

STATUS_SUCCESS = 0x0000
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_CANNOT_UNDERSTAND = 0xC000


@dataclass
class _AssociationState:
    number: int
    batch: IngestBatch | None = None
    stores: int = 0


class StoreHandler:
    """The C-STORE and association-end handlers of one listener, bound to one project.

    Guarantees: every C-STORE that gets 0x0000 has an item in the association's batch,
    stored encrypted and enqueued for de-identification after commit (an item quarantined
    later was stored: Success is right). A data set that is not stored gets a failure
    status (PS3.4 Table B.2-1): an unreadable one, or one with a value longer than its VR
    allows, becomes a REJECTED item with its reason and gets 0xC000 (cannot understand);
    a failure to store it (the encrypted quarantine, the database) leaves no item and gets
    0xA700 (out of resources), logged by exception type only. No handler raises into
    pynetdicom.
    """

    def __init__(self, *, project_id: Any, user_id: Any = None) -> None:
        self.project_id = project_id
        self.user_id = user_id
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self._states: weakref.WeakKeyDictionary[Any, _AssociationState] = weakref.WeakKeyDictionary()

    def handlers(self) -> list[tuple[Any, Any]]:
        return [
            (evt.EVT_C_STORE, self.on_store),
            (evt.EVT_RELEASED, self.on_association_end),
            (evt.EVT_ABORTED, self.on_association_end),
        ]

    def _state(self, assoc: Any) -> _AssociationState:
        with self._lock:
            state = self._states.get(assoc)
            if state is None:
                state = self._states[assoc] = _AssociationState(number=next(self._numbers))
            return state

    def _batch(self, state: _AssociationState) -> IngestBatch:
        if state.batch is None:
            from django.contrib.auth import get_user_model

            project = Project.objects.get(pk=self.project_id)
            user = get_user_model().objects.filter(pk=self.user_id).first() if self.user_id else None
            state.batch = services.batch_create(project=project, source=Source.LISTENER, user=user)
        return state.batch

    def on_store(self, event: Any) -> int:
        state = self._state(event.assoc)
        state.stores += 1
        name = f"association-{state.number}-{state.stores}.dcm"
        close_old_connections()
        try:
            incoming = _incoming(name, event.encoded_dataset())
            services.batch_add(batch=self._batch(state), incoming=[incoming])
        except Exception as exc:  # the peer gets a status; the listener keeps serving
            logger.error("C-STORE %s failed (%s)", name, type(exc).__name__)
            return STATUS_OUT_OF_RESOURCES
        finally:
            close_old_connections()
        return STATUS_SUCCESS if incoming.data is not None else STATUS_CANNOT_UNDERSTAND

    def on_association_end(self, event: Any) -> None:
        with self._lock:
            state = self._states.pop(event.assoc, None)
        if state is not None and state.batch is not None:
            logger.info("association %d ended: %d instance(s) in batch %s", state.number, state.stores, state.batch.pk)
        if threading.current_thread() is event.assoc:
            connections.close_all()  # the association thread ends here; do not leak its connection


def _incoming(name: str, raw: bytes) -> Incoming:
    """The instance as an Incoming; unreadable data sets become a rejection with its reason."""
    try:
        read_checked(raw)
    except InputError as exc:
        return Incoming(name, None, exc.code, exc.message)
    return Incoming(name, raw)


# DUL states (PS3.8 Table 9-10) of a connection that has not yet sent its A-ASSOCIATE-RQ.
_NOT_REQUESTED = frozenset({"Sta1", "Sta2"})


class ListenerAE(AE):
    """An AE whose association limit counts only peers that have asked to associate.

    pynetdicom counts every open TCP connection toward ``maximum_associations``, one that
    never sends a byte too, so ten idle connections refused everyone until its network
    timeout dropped them. Connections still waiting for their A-ASSOCIATE-RQ are left
    out here (pynetdicom reads this property for that check only, and for propagating
    timeouts, which we set before serving); the ARTIM timer closes them after the ACSE
    timeout, and the listener's connection cap bounds how many can wait at once.
    """

    @property
    def active_associations(self) -> list[Any]:
        return [
            assoc
            for assoc in super().active_associations
            if assoc.dul.state_machine.current_state not in _NOT_REQUESTED
        ]


def listener_ae(*, ae_title: str) -> AE:
    """An AE accepting every storage SOP class in every transfer syntax, plus Verification.

    Its timeouts come from settings (``DICOM_LISTENER_*``): ACSE (also how long a new
    connection may take to send its association request), DIMSE, and network (how long
    an established association may stay silent before it is aborted).
    """
    ae = ListenerAE(ae_title=ae_title)
    ae.acse_timeout = settings.DICOM_LISTENER_ACSE_TIMEOUT
    ae.dimse_timeout = settings.DICOM_LISTENER_DIMSE_TIMEOUT
    ae.network_timeout = settings.DICOM_LISTENER_NETWORK_TIMEOUT
    ae.maximum_associations = settings.DICOM_LISTENER_MAX_ASSOCIATIONS
    for context in AllStoragePresentationContexts:
        if context.abstract_syntax:
            ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    ae.add_supported_context(Verification)
    ae.require_called_aet = True
    return ae


def listener_start(
    *, project: Project, port: int, ae_title: str = "WORKBENCH", bind: str = "127.0.0.1", user: Any = None
) -> ThreadedAssociationServer:
    """Start serving in background threads; returns the server (stop it with listener_stop)."""
    # pynetdicom's debug output dumps identifiers (SOP Instance UIDs); keep it out of logs.
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    handler = StoreHandler(project_id=project.pk, user_id=getattr(user, "pk", None))
    ae = listener_ae(ae_title=ae_title)
    server = ae.start_server((bind, port), block=False, evt_handlers=handler.handlers())  # type: ignore[arg-type]
    assert server is not None  # block=False always returns the server
    _cap_connections(server, settings.DICOM_LISTENER_MAX_CONNECTIONS)
    return server


def _cap_connections(server: ThreadedAssociationServer, limit: int) -> None:
    """Close new TCP connections at once while ``limit`` are open (each one holds a thread).

    The count is of association threads, which start just after a connection is accepted,
    so a burst of simultaneous connections may pass the cap by the few still starting.
    """

    def verify_request(request: Any, client_address: Any) -> bool:
        if len(server.active_associations) < limit:
            return True
        logger.warning("listener: %d connections open, refusing another", limit)
        return False

    # socketserver asks self.verify_request before serving each connection.
    server.verify_request = verify_request  # type: ignore[method-assign]


def listener_stop(server: ThreadedAssociationServer, *, timeout: float = 5.0) -> None:
    """Stop accepting, close the socket, then abort associations still running and wait for them."""
    server.shutdown()
    running = server.active_associations
    for assoc in running:
        assoc.abort()
    for assoc in running:
        assoc.join(timeout)
