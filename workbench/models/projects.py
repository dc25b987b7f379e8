"""Projects, memberships and roles."""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.db import models

from workbench import crypto


class Role(models.TextChoices):
    RADIOLOGIST = "radiologist", "Radiologist"
    REVIEWER = "reviewer", "Reviewer"
    COMPLIANCE = "compliance", "Compliance officer"
    ML_ENGINEER = "ml_engineer", "ML engineer"
    ADMIN = "admin", "Project admin"


def _new_encrypted_secret() -> bytes:
    return crypto.encrypt(secrets.token_bytes(32))


class Project(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # DeidOptions.to_dict(); empty means the research default.
    deid_options = models.JSONField(default=dict, blank=True)
    # The per-project pseudonymization key, encrypted with the vault key.
    secret_encrypted = models.BinaryField(default=_new_encrypted_secret, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def pseudonym_secret(self) -> bytes:
        return crypto.decrypt(self.secret_encrypted)


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user", "role"], name="unique_membership_role")]

    def __str__(self) -> str:
        return f"{self.user} {self.role} in {self.project}"
