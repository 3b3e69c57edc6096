"""NetSuite authentication for httpx: Token-Based Authentication (OAuth 1.0a) and OAuth 2.0 client credentials."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
import jwt
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256, SIGNATURE_TYPE_AUTH_HEADER
from oauthlib.oauth1 import Client as OAuth1Client
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from returnbridge.connectors.http import describe_transport_error as _describe
from returnbridge.connectors.http import parse_retry_after
from returnbridge.domain.erps import NETSUITE
from returnbridge.errors import ConfigError, ErpAuthError, TransientErpError

ERP = NETSUITE.name


def _one_source(model: BaseModel, *names: str) -> None:
    for name in names:
        sources = [getattr(model, n) is not None for n in (name, f"{name}_env", f"{name}_file")]
        if sum(sources) != 1:
            raise ValueError(f"give exactly one of {name}, {name}_env, {name}_file")


class TbaAuthConfig(BaseModel):
    """Token-Based Authentication: an integration record (consumer) plus an access token."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["tba"] = "tba"
    consumer_key: str = Field(min_length=1)
    consumer_secret: SecretStr | None = None
    consumer_secret_env: str | None = None
    consumer_secret_file: Path | None = None
    token_id: str = Field(min_length=1)
    token_secret: SecretStr | None = None
    token_secret_env: str | None = None
    token_secret_file: Path | None = None

    @model_validator(mode="after")
    def _check_sources(self) -> TbaAuthConfig:
        _one_source(self, "consumer_secret", "token_secret")
        return self


class OAuth2AuthConfig(BaseModel):
    """OAuth 2.0 client credentials: a JWT assertion signed with the certificate's private key."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["oauth2"] = "oauth2"
    client_id: str = Field(min_length=1)
    certificate_id: str = Field(min_length=1)
    private_key: SecretStr | None = None
    private_key_env: str | None = None
    private_key_file: Path | None = None
    algorithm: Literal["PS256", "PS384", "PS512", "ES256", "ES384", "ES512"] = "PS256"
    scope: str = "rest_webservices"
    # Default: <base_url>/services/rest/auth/oauth2/v1/token.
    token_url: str | None = None
    # Assertion lifetime in seconds; NetSuite refuses exp beyond iat + 60 minutes.
    assertion_lifetime: int = Field(default=300, ge=10, le=3600)

    @model_validator(mode="after")
    def _check_sources(self) -> OAuth2AuthConfig:
        _one_source(self, "private_key")
        return self


NetSuiteAuthConfig = Annotated[TbaAuthConfig | OAuth2AuthConfig, Field(discriminator="method")]


class TbaAuth(httpx.Auth):
    """Signs every request with an OAuth 1.0a header (HMAC-SHA256, realm = account id) via oauthlib."""

    def __init__(
        self,
        *,
        realm: str,
        consumer_key: str,
        consumer_secret: SecretStr,
        token_id: str,
        token_secret: SecretStr,
    ) -> None:
        self._realm = realm
        self._consumer_key = consumer_key
        self._consumer_secret = consumer_secret
        self._token_id = token_id
        self._token_secret = token_secret

    def __repr__(self) -> str:
        return f"TbaAuth(realm={self._realm!r}, consumer_key={self._consumer_key!r}, token_id={self._token_id!r})"

    def sign(self, method: str, url: str) -> str:
        """The Authorization header value for one request (fresh nonce and timestamp each time)."""
        client = OAuth1Client(
            self._consumer_key,
            client_secret=self._consumer_secret.get_secret_value(),
            resource_owner_key=self._token_id,
            resource_owner_secret=self._token_secret.get_secret_value(),
            signature_method=SIGNATURE_HMAC_SHA256,
            signature_type=SIGNATURE_TYPE_AUTH_HEADER,
            realm=self._realm,
            nonce=uuid.uuid4().hex,
        )
        # JSON bodies are not part of an OAuth 1.0a signature, so the body is left out on purpose.
        _, headers, _ = client.sign(url, http_method=method)
        return str(headers["Authorization"])

    def auth_flow(self, request: httpx.Request) -> Any:
        request.headers["Authorization"] = self.sign(request.method, str(request.url))
        response = yield request
        if response.status_code == 401:
            # Under load a request signed earlier can reach NetSuite after a later one ("timestamp went
            # back") and NetSuite refuses it. A 401 means nothing was applied, so one fresh signature is
            # safe; wrong credentials fail again and surface as ErpAuthError.
            request.headers["Authorization"] = self.sign(request.method, str(request.url))
            yield request


# Called with the deadline (seconds) of the request that needs the token, or None.
TokenFetcher = Callable[[float | None], Awaitable[tuple[str, float]]]


class OAuth2ClientCredentials(httpx.Auth):
    """Bearer token from the client-credentials flow: cached until shortly before expiry, re-fetched on 401."""

    # Renew this many seconds before the token's stated expiry, so no request carries a dying token.
    EXPIRY_MARGIN = 60.0

    def __init__(self, fetch_token: TokenFetcher) -> None:
        self._fetch = fetch_token
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def token(self, *, stale: str | None = None, deadline: float | None = None) -> str:
        async with self._lock:
            # Another request may have refreshed it while we waited for the lock.
            if self._token is not None and self._token != stale and time.monotonic() < self._expires_at:
                return self._token
            token, lifetime = await self._fetch(deadline)
            self._token = token
            self._expires_at = time.monotonic() + max(0.0, lifetime - self.EXPIRY_MARGIN)
            return token

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        # The token fetch counts against the deadline of the request it serves.
        deadline = (request.extensions.get("timeout") or {}).get("read")
        token = await self.token(deadline=deadline)
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            token = await self.token(stale=token, deadline=deadline)
            request.headers["Authorization"] = f"Bearer {token}"
            yield request

    def sync_auth_flow(self, request: httpx.Request) -> Any:
        raise RuntimeError("OAuth2ClientCredentials works with httpx.AsyncClient only")


def client_assertion(
    config: OAuth2AuthConfig, private_key: SecretStr, token_url: str, *, now: float | None = None
) -> str:
    """The signed JWT NetSuite expects as ``client_assertion`` (kid = certificate id, aud = token URL)."""
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": config.client_id,
        "scope": config.scope,
        "aud": token_url,
        "iat": issued,
        "exp": issued + config.assertion_lifetime,
        "jti": uuid.uuid4().hex,
    }
    headers = {"kid": config.certificate_id, "typ": "JWT"}
    try:
        return jwt.encode(claims, private_key.get_secret_value(), algorithm=config.algorithm, headers=headers)
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        raise ConfigError(
            f"auth.private_key: cannot sign a {config.algorithm} assertion with it: {exc}"
        ) from exc


async def fetch_oauth2_token(
    client: httpx.AsyncClient,
    config: OAuth2AuthConfig,
    private_key: SecretStr,
    token_url: str,
    *,
    deadline: float,
) -> tuple[str, float]:
    """POST the client-credentials grant; returns (access token, lifetime in seconds).

    Raises:
        ErpAuthError: the token endpoint refused the client or the assertion.
        TransientErpError: the endpoint was unreachable or failed with 5xx / 429.
    """
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": client_assertion(config, private_key, token_url),
    }
    try:
        response = await client.post(token_url, data=form, timeout=deadline)
    except httpx.TransportError as exc:
        raise TransientErpError(
            f"cannot reach the NetSuite token endpoint: {_describe(exc)}", erp=ERP, code="TOKEN_ENDPOINT"
        ) from exc
    body: dict[str, Any] = {}
    try:
        parsed = response.json()
        body = parsed if isinstance(parsed, dict) else {}
    except ValueError:
        body = {}
    if response.status_code >= 500 or response.status_code == 429:
        raise TransientErpError(
            f"token endpoint answered {response.status_code}",
            erp=ERP,
            code=str(body.get("error", "TOKEN_ENDPOINT")),
            http_status=response.status_code,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    if response.status_code != 200 or not isinstance(body.get("access_token"), str):
        code = str(body.get("error") or "invalid_client")
        detail = str(body.get("error_description") or body.get("error") or response.text[:200])
        raise ErpAuthError(
            f"NetSuite refused the OAuth 2.0 client credentials: {detail}",
            erp=ERP,
            code=code,
            http_status=response.status_code,
        )
    try:
        # NetSuite sends expires_in as a string; other servers send a number.
        lifetime = float(body.get("expires_in", 3600))
    except (TypeError, ValueError):
        lifetime = 3600.0
    return body["access_token"], lifetime
