"""Ingest batches, the encrypted quarantine, the identity vault and de-id reports."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from workbench.models import Instance, Project


class Source(models.TextChoices):
    UPLOAD = "upload", "Browser upload"
    API = "api", "REST API"
    FOLDER = "folder", "Folder"
    LISTENER = "listener", "DICOM listener"


class IngestBatch(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="batches")
    source = models.CharField(max_length=16, choices=Source.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Errors of the batch itself (a zip that could not be opened), never values from files.
    errors = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "ingest batches"

    def __str__(self) -> str:
        return f"batch {self.pk}"


class ItemStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSING = "processing", "Processing"
    DONE = "done", "De-identified"
    DUPLICATE = "duplicate", "Duplicate (already stored)"
    QUARANTINED = "quarantined", "Quarantined"
    REJECTED = "rejected", "Rejected"
    DISCARDED = "discarded", "Discarded"


PENDING_STATUSES = (ItemStatus.RECEIVED, ItemStatus.PROCESSING)


class IngestItem(models.Model):
    """One incoming file. Its raw bytes live encrypted in the quarantine storage.

    ``QUARANTINED`` items could not be de-identified safely and wait for a
    compliance officer; ``REJECTED`` ones are not usable input (not DICOM,
    truncated, too large) and keep no raw bytes.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    batch = models.ForeignKey(IngestBatch, on_delete=models.CASCADE, related_name="items")
    index = models.IntegerField()
    sha256 = models.CharField(max_length=64, blank=True)
    size = models.BigIntegerField(default=0)
    # Input names may themselves carry identity: kept encrypted, never shown in lists.
    name_encrypted = models.BinaryField(null=True, blank=True)
    raw_path = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=16, choices=ItemStatus.choices, default=ItemStatus.RECEIVED)
    reason_code = models.CharField(max_length=40, blank=True)
    reason = models.TextField(blank=True)
    instance = models.ForeignKey(Instance, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    attempts = models.IntegerField(default=0)
    # Set by a compliance officer's re-process: DeidOptions fields that differ from the
    # project's for this item only (booleans; see review.item_reprocess).
    options_override = models.JSONField(default=dict, blank=True)
    # The pixels were at risk of burned-in text (cleaned, or could not be): a redaction
    # preview is offered in the quarantine.
    pixel_flagged = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # While PROCESSING, the claim's heartbeat: its worker refreshes it (services._heartbeat).
    updated_at = models.DateTimeField(auto_now=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # The outbox mark: set once the item's task was handed to the broker (anonymizer.outbox).
    # A RECEIVED item without it was committed by a process that died before the hand-over.
    enqueued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["batch", "index"]
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"item {self.index} of batch {self.batch_id}"


class VaultKind(models.TextChoices):
    PATIENT = "patient", "Patient"
    STUDY = "study", "Study"


class VaultEntry(models.Model):
    """Pseudonym -> original identity, Fernet-encrypted. Read only via vault_lookup."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="vault_entries")
    kind = models.CharField(max_length=16, choices=VaultKind.choices)
    pseudonym = models.CharField(max_length=64)
    identity_encrypted = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "kind", "pseudonym"], name="unique_vault_pseudonym")]
        verbose_name_plural = "vault entries"

    def __str__(self) -> str:
        return f"{self.kind} {self.pseudonym}"


class DeidReport(models.Model):
    """What the de-identification did to one instance: attribute paths and actions, never values."""

    instance = models.OneToOneField(Instance, on_delete=models.CASCADE, related_name="deid_report")
    profile = models.CharField(max_length=200)
    options = models.JSONField()
    recipe_sha256 = models.CharField(max_length=64)
    action_counts = models.JSONField()
    attributes = models.JSONField()  # [[path, keyword, action], ...]
    pixel_cleaned = models.BooleanField(default=False)
    text_regions = models.IntegerField(default=0)
    verifier_leaks = models.IntegerField(default=0)
    # Kinds of content removed from free text: [[path, keyword, kind], ...], never the value.
    text_removals = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"de-identification report of {self.instance_id}"


# --- project vocabulary (free-text words a compliance officer declared safe) ----------------------


class VocabularyTerm(models.Model):
    """One word a project's compliance officer declared non-identifying in free text.

    Added to the shipped vocabulary through ``DeidOptions.extra_vocabulary``; written only
    through ``anonymizer.vocabulary`` (compliance officers, audited). ``term`` is normalised:
    one lowercase token of letters, digits and hyphens.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="vocabulary_terms")
    term = models.CharField(max_length=64)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["term"]
        constraints = [models.UniqueConstraint(fields=["project", "term"], name="unique_vocabulary_term")]

    def __str__(self) -> str:
        return self.term


# --- uploads sealed on arrival, expanded in the worker (helper "upload": issue 10) ----------------


class UploadState(models.TextChoices):
    RECEIVING = "receiving", "Receiving (a resumable upload not yet complete)"
    STORED = "stored", "Stored, waiting to be expanded"
    EXPANDING = "expanding", "Being expanded into items"
    EXPANDED = "expanded", "Expanded into items"


class IngestUpload(models.Model):
    """One uploaded file (a DICOM file or an archive), sealed in the quarantine storage.

    Its bytes are encrypted segments under ``uploads/<id>`` (anonymizer.sealed); ``segments``
    lists their plaintext sizes, so ``offset`` (their sum) is what is durably stored. A worker
    expands it into the batch's items (anonymizer.uploads); ``entries_done`` counts the files
    already turned into items, so a redelivered expansion resumes instead of repeating.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="uploads")
    batch = models.ForeignKey(IngestBatch, null=True, blank=True, on_delete=models.CASCADE, related_name="uploads")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The name may itself identify the patient: encrypted like IngestItem.name_encrypted.
    name_encrypted = models.BinaryField(null=True, blank=True)
    length = models.BigIntegerField(null=True, blank=True)
    offset = models.BigIntegerField(default=0)
    segments = models.JSONField(default=list, blank=True)
    state = models.CharField(max_length=16, choices=UploadState.choices, default=UploadState.RECEIVING)
    entries_done = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["state", "updated_at"])]

    def __str__(self) -> str:
        return f"upload {self.pk}"

    @property
    def prefix(self) -> str:
        return f"uploads/{self.pk}"
