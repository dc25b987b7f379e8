"""Idle connections to the DICOM listener time out and do not block new associations.

The finding: ten TCP connections that send nothing locked the listener for a minute
(pynetdicom counted each one toward its limit of ten associations and dropped them
only after its 60 s network timeout).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, Verification  # type: ignore[attr-defined]

from anonymizer.listener import listener_start, listener_stop
from anonymizer.models import IngestItem
from tests.test_listener import _free_port

pytestmark = [pytest.mark.listener, pytest.mark.django_db(transaction=True)]

TIMEOUT = 2  # seconds, for every listener timeout in these tests


@pytest.fixture(autouse=True)
def _short_timeouts(settings: Any) -> None:
    settings.DICOM_LISTENER_ACSE_TIMEOUT = TIMEOUT
    settings.DICOM_LISTENER_DIMSE_TIMEOUT = TIMEOUT
    settings.DICOM_LISTENER_NETWORK_TIMEOUT = TIMEOUT


@pytest.fixture
def listener(project_a: Any) -> Iterator[int]:
    port = _free_port()
    server = listener_start(project=project_a, port=port, ae_title="WORKBENCH")
    yield port
    listener_stop(server)


def _idle_sockets(port: int, count: int) -> list[socket.socket]:
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]
    time.sleep(0.3)  # let the listener accept them all
    return sockets


def _closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, TimeoutError):
        return False


def test_idle_connections_do_not_block_an_association(listener: int) -> None:
    idle = _idle_sockets(listener, 10)
    try:
        ae = AE(ae_title="MODALITY")
        ae.add_requested_context(Verification)
        ae.add_requested_context(CTImageStorage)
        started = time.monotonic()
        assoc = ae.associate("127.0.0.1", listener, ae_title="WORKBENCH")
        assert assoc.is_established, "the eleventh connection was refused"
        assert assoc.send_c_echo().Status == 0x0000
        assert assoc.send_c_store(pydicom.dcmread(get_testdata_file("CT_small.dcm"))).Status == 0x0000
        assoc.release()
        assert time.monotonic() - started < 1.5  # promptly, not after an idle connection's timeout
        assert IngestItem.objects.count() == 1
    finally:
        for sock in idle:
            sock.settimeout(TIMEOUT + 5)
        closed = [_closed_by_peer(sock) for sock in idle]
        for sock in idle:
            sock.close()
    assert all(closed), "the listener kept idle connections open past its timeout"


def test_an_idle_association_is_aborted_after_the_timeout(listener: int) -> None:
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", listener, ae_title="WORKBENCH")
    assert assoc.is_established
    started = time.monotonic()
    while assoc.is_alive() and time.monotonic() - started < TIMEOUT + 5:
        time.sleep(0.1)
    assert assoc.is_aborted, "the listener kept an idle association"
    assert time.monotonic() - started < TIMEOUT + 3


def test_many_idle_connections_still_leave_room(listener: int) -> None:
    idle = _idle_sockets(listener, 30)
    try:
        for _ in range(3):
            ae = AE(ae_title="MODALITY")
            ae.add_requested_context(Verification)
            assoc = ae.associate("127.0.0.1", listener, ae_title="WORKBENCH")
            assert assoc.is_established
            assert assoc.send_c_echo().Status == 0x0000
            assoc.release()
    finally:
        for sock in idle:
            sock.close()


def test_connections_past_the_cap_are_closed_at_once(project_a: Any, settings: Any) -> None:
    settings.DICOM_LISTENER_MAX_CONNECTIONS = 5
    port = _free_port()
    server = listener_start(project=project_a, port=port, ae_title="WORKBENCH")
    idle = _idle_sockets(port, 5)
    deadline = time.monotonic() + 10
    while len(server.active_associations) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)  # each accepted connection starts its association thread
    try:
        extra = socket.create_connection(("127.0.0.1", port), timeout=2)
        assert _closed_by_peer(extra)
        extra.close()
    finally:
        for sock in idle:
            sock.close()
        listener_stop(server)
