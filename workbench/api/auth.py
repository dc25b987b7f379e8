"""Token authentication that counts failed tokens per client address (workbench.lockout).

DRF runs authentication before its throttles, so a wrong token never reaches a
throttle: without this, an address could guess tokens without limit. A locked
address is refused with 429 and Retry-After, even with a valid token.
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.request import Request

from workbench.lockout import client_address, lockout_check, lockout_failure_record, lockout_message


class LockedOut(exceptions.Throttled):
    default_code = "locked_out"


class LockoutTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <key>``, refused while the client's address is locked out."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        if not self._sends_token(request):
            return None  # session authentication or anonymous: not a token attempt
        address = client_address(request._request)
        locked = lockout_check(username=None, address=address)
        if locked is not None:
            raise LockedOut(wait=locked.retry_after, detail=lockout_message(locked))
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            started = lockout_failure_record(username=None, address=address, via="token")
            if started is not None:
                raise LockedOut(wait=started.retry_after, detail=lockout_message(started)) from None
            raise

    def _sends_token(self, request: Request) -> bool:
        header = get_authorization_header(request).split()
        return bool(header) and header[0].lower() == self.keyword.lower().encode()
