"""A project's own free-text vocabulary: words its compliance officer declared non-identifying.

Free text keeps only words known to be safe (the shipped vocabulary under
``anonymizer/deid/data/``). A project may add words of its own, for instance its
protocol names; only a compliance officer may, every change is audited, and the
words reach the engine through ``DeidOptions.extra_vocabulary`` (so the recipe
checksum of every report names the vocabulary in force).
"""

from __future__ import annotations

import unicodedata
from typing import Any

from django.db import IntegrityError, transaction

from anonymizer.models import VocabularyTerm
from workbench.access import require_role
from workbench.audit import audit_record
from workbench.models import Project, Role

# Only the compliance officer decides what is safe to keep (a project admin may read the list).
VOCABULARY_EDIT_ROLES = frozenset({Role.COMPLIANCE})
MAX_TERM_LENGTH = 64
# Five digits or more look like a record number, a date or a phone number: never "known safe".
MAX_DIGITS = 4
_DIGITS = frozenset("0123456789")


class VocabularyError(ValueError):
    """A term that cannot be added or removed; the message says why, in words."""


def vocabulary_term_normalise(term: str) -> str:
    """The stored form of ``term``: one NFC, lowercase token of letters, digits and hyphens.

    Raises VocabularyError unless the result is 1-64 characters, starts and ends with a
    letter or digit, holds no character other than letters, ASCII digits and hyphens, and holds
    fewer than five digits (a token with more looks like an identifier, date or phone number).
    """
    value = unicodedata.normalize("NFC", str(term).strip()).lower()
    if not value:
        raise VocabularyError("Enter a word.")
    if len(value) > MAX_TERM_LENGTH:
        raise VocabularyError(f"A word has at most {MAX_TERM_LENGTH} characters.")
    allowed = all(ch.isalpha() or ch in _DIGITS or ch == "-" for ch in value)
    if not allowed or value.startswith("-") or value.endswith("-"):
        raise VocabularyError("Enter one word of letters, digits and hyphens (no spaces or other signs).")
    if sum(ch in _DIGITS for ch in value) > MAX_DIGITS:
        raise VocabularyError(
            "A word with five digits or more looks like an identifier, a date or a phone number; it cannot be added."
        )
    return value


def project_vocabulary(project: Project) -> tuple[str, ...]:
    """The project's words, sorted, as ``DeidOptions.extra_vocabulary`` takes them."""
    return tuple(VocabularyTerm.objects.filter(project=project).order_by("term").values_list("term", flat=True))


def _audit(action: str, project: Project, user: Any, term: str) -> None:
    from anonymizer.processing import recipe_sha256
    from anonymizer.services import project_options

    audit_record(
        action=action,
        actor=user,
        project=project,
        object_type="vocabulary_term",
        object_id=term,
        details={
            "term": term,
            "terms": len(project_vocabulary(project)),
            "recipe": recipe_sha256(project_options(project)),
        },
    )


def vocabulary_term_add(*, project: Project, user: Any, term: str) -> VocabularyTerm:
    """Add one word to the project's vocabulary (compliance officers only; audited).

    Raises PermissionDenied for any other role and VocabularyError for an invalid word or
    one the project already has. Applies to files de-identified from now on.
    """
    require_role(user, project, VOCABULARY_EDIT_ROLES)
    value = vocabulary_term_normalise(term)
    try:
        with transaction.atomic():
            entry = VocabularyTerm.objects.create(project=project, term=value, added_by=user)
            _audit("vocabulary_term_added", project, user, value)
    except IntegrityError:
        raise VocabularyError(f"'{value}' is already in this project's vocabulary.") from None
    return entry


def vocabulary_term_remove(*, project: Project, user: Any, term: str) -> None:
    """Remove one word from the project's vocabulary (compliance officers only; audited).

    Raises PermissionDenied for any other role and VocabularyError when the project does
    not have the word. Files already de-identified are not redone.
    """
    require_role(user, project, VOCABULARY_EDIT_ROLES)
    try:
        value = vocabulary_term_normalise(term)
    except VocabularyError:
        value = ""
    with transaction.atomic():
        deleted, _ = VocabularyTerm.objects.filter(project=project, term=value).delete() if value else (0, {})
        if not deleted:
            raise VocabularyError("This word is not in this project's vocabulary.")
        _audit("vocabulary_term_removed", project, user, value)
