"""The catalog of de-identified data. Nothing here holds an original identifier."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import F
from django.db.models.expressions import OrderBy

from workbench.models.projects import Project


class Patient(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="patients")
    pseudo_id = models.CharField(max_length=64)
    sex = models.CharField(max_length=16, blank=True)
    age = models.CharField(max_length=8, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "pseudo_id"], name="unique_patient_pseudonym")]
        ordering = ["pseudo_id"]

    def __str__(self) -> str:
        return self.pseudo_id


class Study(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="studies")
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="studies")
    study_uid = models.CharField(max_length=64)
    study_date = models.CharField(max_length=8, blank=True)  # shifted or reduced
    accession_pseudonym = models.CharField(max_length=16, blank=True)
    description = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "study_uid"], name="unique_study_uid")]
        ordering = ["patient__pseudo_id", "study_date"]

    def __str__(self) -> str:
        return self.study_uid


class Series(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series")
    series_uid = models.CharField(max_length=64)
    modality = models.CharField(max_length=16, blank=True)
    number = models.IntegerField(null=True, blank=True)
    description = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "series_uid"], name="unique_series_uid")]
        ordering = ["number", "series_uid"]
        verbose_name_plural = "series"

    def __str__(self) -> str:
        return self.series_uid


class Instance(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="instances")
    sop_uid = models.CharField(max_length=64)
    sop_class_uid = models.CharField(max_length=64)
    number = models.IntegerField(null=True, blank=True)
    rows = models.IntegerField(null=True, blank=True)
    columns = models.IntegerField(null=True, blank=True)
    frames = models.IntegerField(default=1)
    pixel_spacing = models.JSONField(null=True, blank=True)  # [row, column] in mm
    slice_thickness = models.FloatField(null=True, blank=True)
    # ImagePositionPatient projected on the slice normal (mm): the order of slices in space.
    slice_position = models.FloatField(null=True, blank=True)
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()
    storage_path = models.CharField(max_length=500)
    pixel_cleaned = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["series", "sop_uid"], name="unique_instance_uid")]
        ordering = ["number", "sop_uid"]

    def __str__(self) -> str:
        return self.sop_uid


def spatial_order() -> tuple[OrderBy | str, ...]:
    """Instances in space: along the slice normal (head first for axial), then InstanceNumber for
    images without a position, then the UID so that the order is stable."""
    return (F("slice_position").desc(nulls_last=True), "number", "sop_uid")
