"""The authorization matrix: every route × every role, plus no token and bad tokens.

The matrix must name every route the app has: a route added without a row fails
``test_matrix_covers_every_route``, so nobody ships an endpoint with an unreviewed role.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import jwt
from conftest import SECRET  # type: ignore[import-not-found]
from fastapi.routing import iter_route_contexts

from services.incidents.api.auth import GRANTS, ROLES, create_token

NONE = "none"
MATRIX: dict[tuple[str, str], str] = {
    ("GET", "/api/v1/incidents"): "viewer",
    ("GET", "/api/v1/incidents/{incident_id}"): "viewer",
    ("GET", "/api/v1/incidents/{incident_id}/customers"): "viewer",
    ("POST", "/api/v1/incidents/{incident_id}/acknowledge"): "operator",
    ("POST", "/api/v1/incidents/{incident_id}/crew"): "operator",
    ("POST", "/api/v1/incidents/{incident_id}/arrived"): "operator",
    ("POST", "/api/v1/incidents/{incident_id}/etr"): "operator",
    ("POST", "/api/v1/incidents/{incident_id}/restore"): "operator",
    ("POST", "/api/v1/incidents/{incident_id}/notes"): "operator",
    ("POST", "/api/v1/incidents/{incident_id}/split"): "operator",
    ("POST", "/api/v1/incidents/{incident_id}/close"): "supervisor",
    ("POST", "/api/v1/incidents/{incident_id}/cancel"): "supervisor",
    ("POST", "/api/v1/incidents/{incident_id}/merge"): "supervisor",
    ("GET", "/api/v1/crews"): "viewer",
    ("GET", "/api/v1/feeders"): "viewer",
    ("POST", "/api/v1/crews"): "supervisor",
    ("PATCH", "/api/v1/crews/{crew_id}"): "operator",
    ("GET", "/api/v1/planned-outages"): "viewer",
    ("POST", "/api/v1/planned-outages"): "supervisor",
    ("POST", "/api/v1/planned-outages/{planned_id}/start"): "supervisor",
    ("POST", "/api/v1/planned-outages/{planned_id}/complete"): "supervisor",
    ("POST", "/api/v1/planned-outages/{planned_id}/cancel"): "supervisor",
    ("GET", "/api/v1/customers/lookup"): "viewer",
    ("GET", "/api/v1/reports/{kind}"): "manager",
    ("GET", "/api/v1/events"): "viewer",
    ("GET", "/api/v1/dead-letters"): "admin",
    ("POST", "/api/v1/dead-letters/{dead_letter_id}/replay"): "admin",
    ("GET", "/api/v1/audit"): "admin",
    ("GET", "/healthz"): NONE,
    ("GET", "/readyz"): NONE,
    ("GET", "/metrics"): NONE,
    ("GET", "/openapi.json"): NONE,
    ("GET", "/docs"): NONE,
    ("GET", "/docs/oauth2-redirect"): NONE,
    ("GET", "/redoc"): NONE,
    # the dashboard page is public HTML; its script calls the API with a token
    ("GET", "/"): NONE,
    ("GET", "/dashboard"): NONE,
}
SAMPLE_PATH = {
    "incident_id": "NOPE-1",
    "crew_id": "NOPE",
    "planned_id": "NOPE",
    "dead_letter_id": "999999",
    "kind": "sla",
}
# sent with every request: lets an authorised call fail fast with a 4xx instead of
# streaming (the SSE route) or doing work; authorisation is checked before either.
EXTRA_HEADERS = {"Last-Event-ID": "not-a-number", "If-Match": '"NOPE-1-1"'}
CASES = sorted(MATRIX.items())


def _bad_tokens() -> dict[str, str]:
    now = datetime.now(UTC)
    claims = {
        "sub": "mallory",
        "roles": ["admin"],
        "aud": "outagedesk",
        "exp": int((now + timedelta(minutes=5)).timestamp()),
    }
    return {
        "expired": create_token(
            SECRET, "x", ["admin"], now=now - timedelta(hours=2), ttl=timedelta(minutes=5)
        ),
        "forged": jwt.encode(claims, "another-secret-of-sufficient-length!!", algorithm="HS256"),
        "alg_none": jwt.encode(claims, None, algorithm="none"),  # type: ignore[arg-type]
        "wrong_audience": jwt.encode({**claims, "aud": "someone-else"}, SECRET, algorithm="HS256"),
        "no_roles": jwt.encode(
            {k: v for k, v in claims.items() if k != "roles"}, SECRET, algorithm="HS256"
        ),
        "roles_not_a_list": jwt.encode({**claims, "roles": "admin"}, SECRET, algorithm="HS256"),
        "garbage": "not.a.jwt",
    }


async def _call(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> httpx.Response:
    url = path.format(**SAMPLE_PATH)
    body: dict[str, str] | None = {} if method in ("POST", "PATCH") else None
    # redirects followed: "/" answers 307 to the dashboard page, which must then be served
    return await client.request(
        method, url, json=body, headers={**EXTRA_HEADERS, **headers}, follow_redirects=True
    )


class TestAuthorizationMatrix:
    async def test_matrix_covers_every_route(self, client: httpx.AsyncClient) -> None:
        app = client._transport.app  # type: ignore[attr-defined]
        # iter_route_contexts flattens included routers (FastAPI nests them in app.routes)
        routes = {
            (method, str(route.path))
            for route in iter_route_contexts(app.routes)
            for method in (getattr(route, "methods", None) or ())
            if method != "HEAD"
        }
        assert routes - MATRIX.keys() == set(), "routes without a row in the matrix"
        assert MATRIX.keys() - routes == set(), "matrix rows for routes that do not exist"

    async def test_every_route_every_role_and_bad_token(
        self, client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]
    ) -> None:
        # one test over the whole matrix (one app and database setup); every mismatch listed
        wrong: list[str] = []
        bad_tokens = _bad_tokens()
        for (method, path), needs in CASES:
            for role in ROLES:
                r = await _call(client, method, path, auth(role))
                allowed = needs == NONE or needs in GRANTS[role]
                ok = (
                    r.status_code not in (401, 403)
                    if allowed
                    else (r.status_code == 403 and r.json()["code"] == "forbidden")
                )
                if not ok:
                    wrong.append(f"{method} {path} as {role}: {r.status_code}")
            anonymous = await _call(client, method, path, {})
            if needs == NONE:
                if anonymous.status_code != 200:
                    wrong.append(f"{method} {path} without token: {anonymous.status_code}")
                continue
            if (
                anonymous.status_code != 401
                or anonymous.headers["content-type"] != "application/problem+json"
                or anonymous.headers.get("www-authenticate") != "Bearer"
            ):
                wrong.append(f"{method} {path} without token: {anonymous.status_code}")
            for name, token in bad_tokens.items():
                r = await _call(client, method, path, {"Authorization": f"Bearer {token}"})
                if r.status_code != 401 or r.json()["code"] != "unauthorized":
                    wrong.append(f"{method} {path} with {name} token: {r.status_code}")
        assert wrong == []
