"""Pre-annotation runs: a model version over series, in a worker, writing Proposal rows.

The web process only creates the run and enqueues it (after commit). The worker part,
:func:`inference_run_execute`, imports the handler (hence torch) inside the function.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, QuerySet, Sum
from django.db.models.functions import Least
from django.utils import timezone

from annotations import geometry as geo
from annotations.models import Annotation, Label
from annotations.selectors import label_schema_current
from inference.handlers.uncertainty_map import proposal_uncertainty
from inference.models import InferenceRun, ModelVersion, Proposal, RunStatus
from workbench.access import roles_for
from workbench.audit import audit_record
from workbench.models import Instance, Project, Role, Series

logger = logging.getLogger(__name__)

RUN_ROLES = frozenset({Role.ADMIN, Role.ML_ENGINEER})
# The label kinds a segmentation model's masks can become: one mask per slice and label, or a
# box per connected component. Polygons would need a contour tracer; not yet.
PROPOSABLE_KINDS = frozenset({"mask", "box"})
BATCH_SIZE = 16


class InvalidRun(ValueError):
    """The run cannot be made; ``field`` names the input at fault."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def run_labels(*, project: Project, model: ModelVersion) -> dict[str, Label]:
    """The model's label names mapped to the project's current labels of the same name.

    InvalidRun when a name is missing from the schema or its kind cannot take a model's mask.
    """
    schema = label_schema_current(project=project)
    by_name = {label.name: label for label in schema.labels.all()} if schema else {}
    out = {}
    for name in model.labels:
        label = by_name.get(name)
        if label is None:
            raise InvalidRun(f"The model predicts {name!r}, which the project's label schema lacks.", field="model")
        if label.kind not in PROPOSABLE_KINDS:
            raise InvalidRun(
                f"The label {name!r} is a {label.kind}; a segmentation model proposes masks or boxes only.",
                field="model",
            )
        out[name] = label
    return out


def unlabelled_series_qs(*, project: Project) -> QuerySet[Series]:
    """The project's series on which nobody has a live annotation (a queryset, for subqueries)."""
    labelled = Annotation.objects.filter(deleted=False).values("assignment__series_id")
    return Series.objects.filter(study__project=project).exclude(pk__in=labelled)


def unlabelled_series(*, project: Project, modality: str) -> list[Series]:
    """The project's series of ``modality`` (any when blank) on which nobody has a live annotation."""
    qs = unlabelled_series_qs(project=project)
    if modality:
        qs = qs.filter(modality__in=modality.split(","))
    return list(qs.order_by("study__created_at", "number", "pk"))


def inference_run_create(
    *,
    project: Project,
    model: ModelVersion,
    series_ids: Sequence[Any] | None,
    user: Any,
    enqueue: bool = True,
    uncertainty: bool = True,
) -> InferenceRun:
    """A queued run of ``model`` over the series (None: every unlabelled series of the model's modality).

    Project admins and ML engineers only (PermissionDenied otherwise). InvalidRun for a model
    of another project or kind, series outside the project, or nothing to run on. The task is
    enqueued on the ``inference`` queue once the transaction commits. Audited (inference_run_created).
    """
    from django.core.exceptions import PermissionDenied

    if user is not None and not roles_for(user, project) & RUN_ROLES:
        raise PermissionDenied("Only project admins and ML engineers run models.")
    if model.project_id != project.pk:
        raise InvalidRun("The model belongs to another project.", field="model")
    if model.kind != "segmentation":
        raise InvalidRun("Only segmentation models pre-annotate so far.", field="model")
    run_labels(project=project, model=model)
    modality = str(model.input_spec.get("modality") or "")
    if series_ids is None:
        chosen = unlabelled_series(project=project, modality=modality)
    else:
        wanted = [str(one) for one in dict.fromkeys(series_ids)]
        found = {str(s.pk): s for s in Series.objects.filter(study__project=project, pk__in=wanted)}
        missing = [one for one in wanted if one not in found]
        if missing:
            raise InvalidRun(f"Not series of this project: {', '.join(missing)}.", field="series")
        chosen = [found[one] for one in wanted]
        wrong = [str(s.pk) for s in chosen if modality and s.modality not in modality.split(",")]
        if wrong:
            raise InvalidRun(f"The model reads {modality}; these series are not: {', '.join(wrong)}.", field="series")
    if not chosen:
        raise InvalidRun("There is no series to run on: every matching series is labelled already.", field="series")
    total = Instance.objects.filter(series__in=chosen).aggregate(n=Sum("frames"))["n"] or 0
    with transaction.atomic():
        run = InferenceRun.objects.create(
            project=project,
            model=model,
            series_ids=[str(s.pk) for s in chosen],
            slices_total=total,
            created_by=user,
            uncertainty=uncertainty,
        )
        audit_record(
            action="inference_run_created",
            actor=user,
            project=project,
            object_type="inference_run",
            object_id=run.pk,
            details={"model": model.pk, "series": len(chosen)},
        )
        if enqueue:
            from inference import tasks

            tasks.inference_run_execute.delay_on_commit(str(run.pk))
    return run


# --- the worker part --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slice:
    sop_instance_uid: str
    frame: int
    pixels: np.ndarray  # rows x columns, modality values (HU for CT)


# Uncompressed little-endian: the pixel data is the values themselves, row-major, frame after frame.
_NATIVE_LITTLE_ENDIAN = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"})


def _native_frames(ds: Any) -> np.ndarray | None:
    """(frames, rows, columns): the values ``ds.pixel_array`` gives, read straight from the bytes
    when nothing needs decoding (uncompressed little-endian, 8/16/32 bits all stored); else None.

    pydicom's pixel_array works the same out through its decoder framework, which costs more than
    reading the file on a 512x512 CT slice (bench/inference_throughput.py).
    """
    meta = getattr(ds, "file_meta", None)
    if meta is None or str(meta.get("TransferSyntaxUID", "")) not in _NATIVE_LITTLE_ENDIAN:
        return None
    bits, representation = ds.get("BitsAllocated"), ds.get("PixelRepresentation")
    if bits not in (8, 16, 32) or ds.get("BitsStored") != bits or representation not in (0, 1):
        return None
    try:
        rows, columns = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        return None  # malformed: pydicom's path says what is wrong, as before
    dtype = np.dtype(f"<{'u' if representation == 0 else 'i'}{bits // 8}")
    data = ds.PixelData
    count = rows * columns * frames
    if not count or not isinstance(data, bytes) or len(data) < count * dtype.itemsize:
        return None
    return np.frombuffer(data, dtype=dtype, count=count).reshape(frames, rows, columns)


def instance_slices(instance: Instance) -> list[Slice]:
    """Every frame of a stored (de-identified) instance as modality values; [] for colour images."""
    import pydicom

    with default_storage.open(instance.storage_path, "rb") as fh:
        ds = pydicom.dcmread(fh)
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1 or "PixelData" not in ds:
        return []
    frames = _native_frames(ds)
    if frames is None:
        pixels = ds.pixel_array
        frames = pixels if int(ds.get("NumberOfFrames", 1) or 1) > 1 else pixels[None]
    return [Slice(instance.sop_uid, k, frame) for k, frame in enumerate(_modality_values(frames, ds))]


def _modality_values(frames: np.ndarray, ds: Any) -> list[np.ndarray]:
    """Each frame as float32 modality values: what ``apply_modality_lut`` and a float32 cast give.

    Stored values of 8 or 16 bits under an integral rescale (CT's slope 1, intercept -1024) stay
    integers below 2**24, exact in float32: the rescale is done there, in one pass, not in float64.
    """
    from pydicom.pixels import apply_modality_lut

    if frames.dtype.kind in "iu" and frames.dtype.itemsize <= 2 and not ds.get("ModalityLUTSequence"):
        if "RescaleSlope" not in ds or "RescaleIntercept" not in ds:
            return list(frames.astype(np.float32))  # no rescale: the values as they are
        try:
            slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
        except (TypeError, ValueError):
            slope = intercept = 0.5  # malformed: apply_modality_lut's error, as before
        if slope.is_integer() and intercept.is_integer() and abs(slope) <= 128 and abs(intercept) <= 2**22:
            out = frames.astype(np.float32)
            if slope != 1:
                out *= np.float32(slope)
            out += np.float32(intercept)
            return list(out)
    return [np.asarray(apply_modality_lut(frame, ds), dtype=np.float32) for frame in frames]


def proposal_geometries(kind: str, mask: np.ndarray, objects: Iterable[Any]) -> list[tuple[dict[str, Any], float]]:
    """(geometry, score) in the label kind's annotation format: one mask per slice, or one box per object."""
    if kind == "mask":
        union = np.zeros_like(mask, dtype=bool)
        weighted, area = 0.0, 0
        for one in objects:
            union |= one.mask
            pixels = int(np.count_nonzero(one.mask))  # not .sum(): a boolean sum goes through int64
            weighted += one.score * pixels
            area += pixels
        rows, columns = union.shape
        return [({"rows": rows, "columns": columns, "rle": geo.rle_encode(union)}, weighted / max(area, 1))]
    out = []
    for one in objects:
        x, y, width, height = one.box
        out.append(
            ({"x0": float(x), "y0": float(y), "x1": float(x + width - 1), "y1": float(y + height - 1)}, one.score)
        )
    return out


def proposal_objects(kind: str, objects: Sequence[Any]) -> list[list[Any]]:
    """The objects behind each geometry of :func:`proposal_geometries`, in the same order."""
    return [list(objects)] if kind == "mask" else [[one] for one in objects]


def _claim(run_id: str) -> bool:
    # A run left ``running`` by a lost worker (acks_late redelivers it) is claimed again and resumes
    # at the first series without proposals of this run.
    return bool(
        InferenceRun.objects.filter(pk=run_id, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).update(
            status=RunStatus.RUNNING, started_at=timezone.now(), error=""
        )
    )


def inference_run_execute(*, run_id: str, batch_size: int = BATCH_SIZE) -> InferenceRun | None:
    """Run the model over the run's series in this worker and write the proposals.

    Idempotent: a done or failed run is skipped (None); series that already have proposals of
    this run are not run again. Loads the handler once; slices of one shape go through the network
    in batches of ``batch_size``. Ends ``done``, or ``failed`` with the reason (and re-raises).
    """
    if not _claim(run_id):
        return None
    run = InferenceRun.objects.select_related("model", "project").get(pk=run_id)
    try:
        from inference.handlers import handler_class, handler_name
        from inference.services import model_weights

        labels = run_labels(project=run.project, model=run.model)
        handler = handler_class(handler_name(run.model.kind, run.model.config))(
            model_weights(run.model), run.model.config
        )
        InferenceRun.objects.filter(pk=run.pk).update(device=str(handler.device.type))
        done_series = set(Proposal.objects.filter(run=run).values_list("series_id", flat=True).distinct())
        for series_id in run.series_ids:
            series = Series.objects.filter(pk=series_id).first()
            if series is None or series.pk in done_series:
                continue
            _series_run(run, series, handler, labels, batch_size)
    except Exception as exc:
        logger.exception("inference run %s failed", run.pk)
        InferenceRun.objects.filter(pk=run.pk).update(
            status=RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=timezone.now()
        )
        raise
    InferenceRun.objects.filter(pk=run.pk).update(status=RunStatus.DONE, finished_at=timezone.now())
    run.refresh_from_db()
    return run


def _series_slices(series: Series) -> Iterator[Slice]:
    """The series' slices in instance order, each instance read and decoded when its turn comes.

    Not in a thread ahead of the network: on 2 CPU cores torch already uses both and overlapping
    the decode gained nothing measurable (bench/inference_throughput.py, in-process runs).
    """
    for instance in series.instances.all():
        yield from instance_slices(instance)


def _series_run(run: InferenceRun, series: Series, handler: Any, labels: dict[str, Label], batch_size: int) -> None:
    """One series: its slices grouped by shape, batched through the handler; proposals in one transaction.

    A batch goes through the handler as soon as ``batch_size`` slices of its shape are decoded
    (the same batches as grouping the whole series first: consecutive slices of one shape), and
    only its proposals are kept. The rows are written in the same order: by shape, first seen first.
    With ``run.uncertainty`` and a handler that has ``predict_with_uncertainty``, each proposal
    carries its uncertainty map (inference.handlers.uncertainty_map); otherwise it stays null.
    """
    pending: dict[tuple[int, ...], list[Slice]] = {}
    by_shape: dict[tuple[int, ...], list[Proposal]] = {}
    count = 0
    for one in _series_slices(series):
        shape = one.pixels.shape
        group = pending.setdefault(shape, [])
        group.append(one)
        if len(group) == batch_size:
            by_shape.setdefault(shape, []).extend(_batch_proposals(run, series, handler, group, labels))
            count += len(group)
            pending[shape] = []
    for shape, group in pending.items():
        if group:
            by_shape.setdefault(shape, []).extend(_batch_proposals(run, series, handler, group, labels))
            count += len(group)
    rows = [row for shape in pending for row in by_shape.get(shape, [])]
    with transaction.atomic():
        Proposal.objects.bulk_create(rows, batch_size=500)
        InferenceRun.objects.filter(pk=run.pk).update(
            # Least: a series resumed after a lost worker (it had no proposals) is not counted twice.
            slices_done=Least(F("slices_done") + count, F("slices_total")),
            proposals_count=F("proposals_count") + len(rows),
        )


def _batch_proposals(
    run: InferenceRun, series: Series, handler: Any, slices: Sequence[Slice], labels: dict[str, Label]
) -> list[Proposal]:
    """The (unsaved) proposals of one batch of slices of one shape, in slice order."""
    images = [s.pixels for s in slices]
    if run.uncertainty and hasattr(handler, "predict_with_uncertainty"):
        predictions = handler.predict_with_uncertainty(images, batch_size=len(images))
    else:
        predictions = [(objects, None) for objects in handler.predict(images, batch_size=len(images))]
    rows: list[Proposal] = []
    for one, (objects, entropy) in zip(slices, predictions, strict=True):
        rows += _slice_proposals(run, series, one, objects, entropy, labels)
    return rows


def _slice_proposals(
    run: InferenceRun,
    series: Series,
    one: Slice,
    objects: Sequence[Any],
    entropy: np.ndarray | None,
    labels: dict[str, Label],
) -> list[Proposal]:
    """The (unsaved) proposals of one slice's objects, grouped by label as its kind wants."""
    grouped: dict[str, list[Any]] = defaultdict(list)
    for obj in objects:
        if obj.label in labels and obj.mask.any():
            grouped[obj.label].append(obj)
    out = []
    for name, found in grouped.items():
        label = labels[name]
        made = proposal_geometries(label.kind, one.pixels, found)
        for (geometry, score), parts in zip(made, proposal_objects(label.kind, found), strict=True):
            uncertainty = None if entropy is None else proposal_uncertainty(entropy, [p.mask for p in parts])
            out.append(
                Proposal(
                    run=run,
                    model=run.model,
                    series=series,
                    label=label,
                    sop_instance_uid=one.sop_instance_uid,
                    frame=one.frame,
                    kind=label.kind,
                    geometry=geometry,
                    score=round(float(score), 4),
                    uncertainty=uncertainty.to_dict() if uncertainty else None,
                )
            )
    return out
