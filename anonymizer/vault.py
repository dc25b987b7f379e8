"""The pseudonym vault: original identities, encrypted, readable by compliance officers only.

Writes happen during de-identification (``vault_put``); reads (``vault_lookup``) need a
written reason and are audited whether or not the pseudonym is found.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import IntegrityError, transaction

from anonymizer.models import VaultEntry
from workbench import crypto
from workbench.audit import audit_record
from workbench.models import Project


def vault_put(project: Project, kind: str, pseudonym: str, identity: dict[str, str]) -> None:
    """Store one pseudonym's identity once (idempotent; a concurrent duplicate is ignored)."""
    if not VaultEntry.objects.filter(project=project, kind=kind, pseudonym=pseudonym).exists():
        blob = crypto.encrypt(json.dumps(identity, sort_keys=True).encode())
        try:
            with transaction.atomic():
                VaultEntry.objects.create(project=project, kind=kind, pseudonym=pseudonym, identity_encrypted=blob)
        except IntegrityError:
            pass  # another worker stored the same mapping first


class VaultError(Exception):
    pass


def vault_lookup(*, project: Project, user: Any, pseudonym: str, reason: str) -> dict[str, Any]:
    """Reveal the identity behind a pseudonym. Compliance officers only (checked by the caller
    through workbench.access); a written reason is required and every look-up is audited."""
    if len(reason.strip()) < 10:
        raise VaultError("Give a written reason for this look-up (at least 10 characters).")
    entries = list(VaultEntry.objects.filter(project=project, pseudonym=pseudonym.strip()))
    audit_record(
        action="vault_lookup",
        actor=user,
        project=project,
        object_type="pseudonym",
        object_id=pseudonym.strip()[:64],
        details={"reason": reason.strip(), "found": bool(entries)},
    )
    if not entries:
        raise VaultError("No identity is recorded for this pseudonym in this project.")
    return {e.kind: json.loads(crypto.decrypt(e.identity_encrypted)) for e in entries}
