"""Keyed (HMAC-SHA256) pseudonyms: stable per project secret, unlinkable across secrets."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

# Shift window in days: at least a year back so that shifted dates never look current,
# at most ten years so that ages computed from shifted dates stay plausible.
SHIFT_MIN_DAYS = -3650
SHIFT_MAX_DAYS = -365


@dataclass(frozen=True)
class PseudonymKeys:
    """Derives every pseudonym from one per-project secret.

    Each kind of pseudonym uses its own domain label so that e.g. a patient ID that happens to
    equal an accession number does not get the same pseudonym.
    """

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) < 16:
            raise ValueError("pseudonym secret must be at least 16 bytes")

    def _digest(self, domain: str, value: str) -> bytes:
        message = domain.encode("ascii") + b"\x00" + value.strip().encode("utf-8")
        return hmac.new(self.secret, message, hashlib.sha256).digest()

    def patient_id(self, original_patient_id: str) -> str:
        """ "P" followed by 16 upper-case hex digits (LO-safe, 17 characters)."""
        return "P" + self._digest("patient_id", original_patient_id)[:8].hex().upper()

    def accession(self, original: str) -> str:
        """ "A" followed by 15 hex digits: fits the 16-character SH VR."""
        return "A" + self._digest("accession", original).hex().upper()[:15]

    def uid(self, original_uid: str) -> str:
        """A "2.25." UUID-derived UID (PS3.5 B.2), at most 44 characters."""
        return "2.25." + str(int.from_bytes(self._digest("uid", original_uid)[:16], "big"))

    def date_shift_days(self, original_patient_id: str) -> int:
        """Per-patient shift in [SHIFT_MIN_DAYS, SHIFT_MAX_DAYS], deterministic."""
        span = SHIFT_MAX_DAYS - SHIFT_MIN_DAYS + 1
        n = int.from_bytes(self._digest("date_shift", original_patient_id)[:8], "big")
        return SHIFT_MIN_DAYS + n % span

    def patient_name(self, original_patient_id: str) -> str:
        """ "ANON^<pseudonymous id>", so that viewers sort and display something meaningful."""
        return "ANON^" + self.patient_id(original_patient_id)
