"""Who is asking: the session cookie, the role a page needs, the CSRF token on every change.

The cookie is HttpOnly, SameSite=Strict (and Secure behind https), so other sites can
neither read it nor send it along; every POST must also carry the session's CSRF token
(form field ``csrf`` or header ``X-CSRF-Token``). Sign-in attempts are limited per
address and per account with the app's rate limiter (Redis-shared in production).
"""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web

from supportlah.admin.limits import FloodLimiter, client_address
from supportlah.console.accounts import Accounts, SignedIn

COOKIE = "supportlah_console"
CSRF_HEADER = "X-CSRF-Token"
SIGNED_IN = web.RequestKey("console_signed_in", SignedIn)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Gate:
    def __init__(self, accounts: Accounts, limiter: FloodLimiter, *, login_per_minute: int,
                 trusted_proxy_hops: int, secure_cookie: bool, session_hours: int) -> None:
        self._accounts = accounts
        self._limiter = limiter
        self._login_per_minute = login_per_minute
        self._hops = trusted_proxy_hops
        self._secure = secure_cookie
        self._max_age = session_hours * 3600

    def guard(self, handler: Handler, *, owner: bool = False) -> Handler:
        """Signed-in users only (owners only with ``owner``); POSTs need the CSRF token."""
        async def guarded(request: web.Request) -> web.StreamResponse:
            signed_in = await self._accounts.session(request.cookies.get(COOKIE, ""))
            if signed_in is None:
                if request.method == "GET" and not request.headers.get("HX-Request"):
                    raise web.HTTPSeeOther(f"/console/login?next={request.path}")
                raise web.HTTPUnauthorized(text="Sign in again: your session has ended.")
            if owner and not signed_in.user.is_owner:
                raise web.HTTPForbidden(text="Only the owner can open this page.")
            if request.method == "POST":
                await self.check_csrf(request, signed_in.csrf_token)
            request[SIGNED_IN] = signed_in
            return await handler(request)

        guarded.__name__ = handler.__name__
        return guarded

    async def check_csrf(self, request: web.Request, expected: str) -> None:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent and request.content_type == "application/x-www-form-urlencoded":
            sent = str((await request.post()).get("csrf", ""))
        if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
            raise web.HTTPForbidden(text="This form has expired or did not come from the console; reload the page.")

    async def login_allowed(self, request: web.Request, email: str) -> bool:
        """Counts the attempt; False once the address or the account is over its per-minute budget."""
        address = hashlib.sha256(client_address(request, self._hops).encode()).hexdigest()[:24]
        account = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:24]
        by_address = await self._limiter.hit(f"console-login-ip:{address}", self._login_per_minute)
        by_account = await self._limiter.hit(f"console-login-user:{account}", self._login_per_minute)
        return by_address.allowed and by_account.allowed

    def set_cookie(self, response: web.StreamResponse, token: str) -> None:
        response.set_cookie(COOKIE, token, max_age=self._max_age, path="/console", httponly=True,
                            samesite="Strict", secure=self._secure)

    @staticmethod
    def clear_cookie(response: web.StreamResponse) -> None:
        response.del_cookie(COOKIE, path="/console")
