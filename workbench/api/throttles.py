"""DRF's throttles, counting in the ``throttle`` cache instead of the default one.

A throttle reads and writes its history on every request. In the database cache that is
five queries and a write lock per API call (on SQLite, every viewer slice would queue
behind the others), so throttles count in Redis when it is configured and in each
process's memory otherwise: a per-user ceiling that is approximate by the number of web
processes, which is enough for a ceiling. The lockout (workbench.lockout), which must be
exact, stays in the shared default cache.
"""

from __future__ import annotations

from django.core.cache import caches
from rest_framework import throttling


class AnonRateThrottle(throttling.AnonRateThrottle):
    cache = caches["throttle"]


class UserRateThrottle(throttling.UserRateThrottle):
    cache = caches["throttle"]


class ScopedRateThrottle(throttling.ScopedRateThrottle):
    cache = caches["throttle"]
