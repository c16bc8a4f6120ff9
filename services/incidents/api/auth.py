"""Bearer JWT authentication and the role model of DESIGN section 12.

Tokens carry ``sub``, ``roles`` (a list), ``exp`` and ``aud``. HS256 with
``OUTAGEDESK_JWT_SECRET`` always; RS256 too when a public key is configured. ``alg: none``,
any other algorithm, an expired token, a wrong audience, a bad signature and a missing or
malformed ``roles`` claim are all 401; a valid token without the role a route needs is 403.

Roles nest: supervisor ⊃ operator ⊃ viewer; manager and admin each include viewer.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.incidents.api.problems import ApiProblem

Role = Literal["viewer", "operator", "supervisor", "manager", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "supervisor", "manager", "admin")
# what holding a role grants
GRANTS: Mapping[str, frozenset[str]] = {
    "viewer": frozenset({"viewer"}),
    "operator": frozenset({"viewer", "operator"}),
    "supervisor": frozenset({"viewer", "operator", "supervisor"}),
    "manager": frozenset({"viewer", "manager"}),
    "admin": frozenset({"viewer", "admin"}),
}
HS256 = "HS256"
VERIFIED_CACHE_SIZE = 4096
RS256 = "RS256"


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller."""

    sub: str
    roles: tuple[str, ...]

    @property
    def granted(self) -> frozenset[str]:
        """Every role this caller acts as, nesting applied."""
        out: set[str] = set()
        for role in self.roles:
            out |= GRANTS.get(role, frozenset())
        return frozenset(out)


@dataclass(frozen=True, slots=True)
class TokenVerifier:
    """Verifies bearer tokens; ``secret`` for HS256, ``public_key`` (PEM) for RS256."""

    secret: str | None
    audience: str = "outagedesk"
    public_key: str | None = None
    leeway_s: int = 30
    # token → (principal, exp): a signature check costs ~0.1-0.2 ms of CPU and a client sends
    # the same token with every request. Only the expiry can turn a verified token invalid,
    # so a hit re-checks just that.
    _verified: dict[str, tuple[Principal, float]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if not self.secret and not self.public_key:
            raise ValueError("the API needs OUTAGEDESK_JWT_SECRET (or an RS256 public key)")

    def verify(self, token: str) -> Principal:
        """The token's principal; raises :class:`ApiProblem` 401 when it is not acceptable."""
        hit = self._verified.get(token)
        if hit is not None:
            principal, expires = hit
            if time.time() <= expires + self.leeway_s:  # the clock PyJWT checks `exp` by
                return principal
            del self._verified[token]
        principal, expires = self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (principal, expires)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise _unauthorized(f"malformed token: {exc}") from exc
        alg = header.get("alg")
        key: str | None = {HS256: self.secret, RS256: self.public_key}.get(str(alg))
        if not key:
            raise _unauthorized(f"token algorithm {alg!r} is not accepted")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[str(alg)],
                audience=self.audience,
                leeway=self.leeway_s,
                options={"require": ["exp", "sub", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise _unauthorized("token expired") from exc
        except jwt.PyJWTError as exc:
            raise _unauthorized(f"invalid token: {exc}") from exc
        exp = claims["exp"]
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise _unauthorized("token has no numeric exp claim")
        return _principal(claims), float(exp)


def _principal(claims: Mapping[str, Any]) -> Principal:
    roles = claims.get("roles")
    if not isinstance(roles, list) or not roles or not all(isinstance(r, str) for r in roles):
        raise _unauthorized("token has no roles claim (a non-empty list of strings)")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise _unauthorized("token has no subject")
    return Principal(sub=sub, roles=tuple(roles))


def _unauthorized(detail: str) -> ApiProblem:
    return ApiProblem(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def create_token(
    secret: str,
    sub: str,
    roles: Iterable[str],
    *,
    now: datetime,
    ttl: timedelta = timedelta(hours=8),
    audience: str = "outagedesk",
) -> str:
    """An HS256 token for ``sub`` with ``roles`` valid for ``ttl`` from ``now``."""
    unknown = [r for r in roles if r not in GRANTS]
    if unknown:
        raise ValueError(f"unknown roles {unknown}; expected some of {', '.join(ROLES)}")
    claims = {
        "sub": sub,
        "roles": list(roles),
        "aud": audience,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=HS256)


_bearer = HTTPBearer(auto_error=False, description="JWT with `sub`, `roles`, `exp`, `aud`")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def require(role: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting callers granted ``role`` (401 without a valid token, else 403)."""

    async def dependency(request: Request, credentials: Credentials) -> Principal:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise _unauthorized("a bearer token is required")
        verifier: TokenVerifier = request.app.state.verifier
        principal = verifier.verify(credentials.credentials)
        if role not in principal.granted:
            raise ApiProblem(403, "forbidden", f"this needs the {role} role")
        return principal

    dependency.__name__ = f"require_{role}"
    return dependency


Viewer = Annotated[Principal, Depends(require("viewer"))]
Operator = Annotated[Principal, Depends(require("operator"))]
Supervisor = Annotated[Principal, Depends(require("supervisor"))]
Manager = Annotated[Principal, Depends(require("manager"))]
Admin = Annotated[Principal, Depends(require("admin"))]
