"""NetSuite simulator authentication: TBA (OAuth 1.0a) verification per RFC 5849, OAuth 2.0 client credentials."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

# RFC 5849 3.6: only these characters stay unencoded.
_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
_HEADER_PARAM = re.compile(r'\s*([A-Za-z0-9_]+)\s*=\s*"([^"]*)"\s*(?:,|$)')
_REQUIRED = (
    "oauth_consumer_key",
    "oauth_token",
    "oauth_signature_method",
    "oauth_timestamp",
    "oauth_nonce",
    "oauth_signature",
)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASYMMETRIC_ALGORITHMS = ("PS256", "PS384", "PS512", "ES256", "ES384", "ES512")


class AuthFailure(Exception):
    """A refused login; ``reason`` goes to the simulator's login audit trail, never to the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def pct(value: str) -> str:
    """RFC 5849 3.6 percent-encoding (UTF-8, unreserved characters kept)."""
    return urllib.parse.quote(value, safe=_UNRESERVED[-4:]) if value else ""


def base_string_uri(scheme: str, host: str, port: int | None, raw_path: str) -> str:
    """RFC 5849 3.4.1.2: lower-case scheme and host, default port dropped, path as sent, no query."""
    scheme = scheme.lower()
    authority = host.lower()
    if port is not None and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        authority += f":{port}"
    return f"{scheme}://{authority}{raw_path or '/'}"


def normalized_parameters(params: Sequence[tuple[str, str]]) -> str:
    """RFC 5849 3.4.1.3.2: encode each name and value, sort by name then value, join with '&'."""
    encoded = sorted((pct(k), pct(v)) for k, v in params)
    return "&".join(f"{k}={v}" for k, v in encoded)


def signature_base_string(method: str, uri: str, params: Sequence[tuple[str, str]]) -> str:
    return "&".join((pct(method.upper()), pct(uri), pct(normalized_parameters(params))))


def hmac_sha256_signature(base: str, consumer_secret: str, token_secret: str) -> str:
    key = f"{pct(consumer_secret)}&{pct(token_secret)}"
    digest = hmac.new(key.encode("utf-8"), base.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def parse_oauth_header(value: str) -> dict[str, str]:
    """The parameters of an ``Authorization: OAuth ...`` header, percent-decoded; refuses duplicates."""
    if not value.startswith("OAuth "):
        raise AuthFailure("Authorization header is not OAuth")
    rest = value[len("OAuth ") :]
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        match = _HEADER_PARAM.match(rest, pos)
        if match is None:
            raise AuthFailure("malformed OAuth header")
        name, raw = match.group(1), match.group(2)
        if name in params:
            raise AuthFailure(f"duplicate OAuth parameter {name}")
        params[name] = urllib.parse.unquote(raw)
        pos = match.end()
    return params


@dataclass
class TbaVerifier:
    """Checks TBA requests the way NetSuite does: realm, consumer, token, signature, nonce, timestamp.

    ``tokens`` maps token id -> (consumer key, token secret); ``consumers`` maps consumer key -> secret.
    """

    realm: str
    consumers: Mapping[str, str]
    tokens: Mapping[str, tuple[str, str]]
    max_age: int = 300
    backward_tolerance: int = 2
    clock: Callable[[], float] = time.time
    _nonces: dict[tuple[str, str, str], int] = field(default_factory=dict)
    _last_timestamp: dict[str, int] = field(default_factory=dict)

    def verify(
        self,
        *,
        method: str,
        scheme: str,
        host: str,
        port: int | None,
        raw_path: str,
        query: Sequence[tuple[str, str]],
        authorization: str,
        form: Sequence[tuple[str, str]] = (),
    ) -> str:
        """Return the token id of a valid request; raise AuthFailure with the reason otherwise."""
        params = parse_oauth_header(authorization)
        missing = [p for p in _REQUIRED if not params.get(p)]
        if missing:
            raise AuthFailure(f"MissingTokenPassportRequiredFields: {', '.join(missing)}")
        if params.get("realm") != self.realm:
            raise AuthFailure(f"wrong realm {params.get('realm')!r}")
        if params["oauth_signature_method"] != "HMAC-SHA256":
            raise AuthFailure(f"signature method {params['oauth_signature_method']} not allowed")
        if params.get("oauth_version", "1.0") != "1.0":
            raise AuthFailure("oauth_version must be 1.0")
        consumer_key, token_id = params["oauth_consumer_key"], params["oauth_token"]
        if consumer_key not in self.consumers:
            raise AuthFailure("consumer_key_unknown")
        grant = self.tokens.get(token_id)
        if grant is None:
            raise AuthFailure("token unknown")
        if grant[0] != consumer_key:
            raise AuthFailure("consumer_key_refused: token belongs to another integration")
        nonce = params["oauth_nonce"]
        if len(nonce) < 6 or len(nonce) > 64:
            raise AuthFailure("nonce must be 6..64 characters")
        try:
            stamp = int(params["oauth_timestamp"])
        except ValueError:
            raise AuthFailure("timestamp is not an integer") from None
        now = self.clock()
        if abs(now - stamp) > self.max_age:
            raise AuthFailure("timestamp too old or in the future")
        if stamp < self._last_timestamp.get(token_id, 0) - self.backward_tolerance:
            raise AuthFailure("timestamp went back")

        signed = [(k, v) for k, v in params.items() if k not in ("realm", "oauth_signature")]
        base = signature_base_string(
            method, base_string_uri(scheme, host, port, raw_path), [*query, *form, *signed]
        )
        expected = hmac_sha256_signature(base, self.consumers[consumer_key], grant[1])
        if not hmac.compare_digest(
            expected.encode("ascii"), params["oauth_signature"].encode("utf-8", "replace")
        ):
            raise AuthFailure("signature mismatch")

        # Only a request with a valid signature may burn a nonce or move the clock.
        nonce_key = (token_id, str(stamp), nonce)
        if nonce_key in self._nonces:
            raise AuthFailure("nonce already used")
        self._nonces[nonce_key] = stamp
        self._last_timestamp[token_id] = max(stamp, self._last_timestamp.get(token_id, 0))
        self._forget_old_nonces(now)
        return token_id

    def _forget_old_nonces(self, now: float) -> None:
        if len(self._nonces) < 4096:
            return
        horizon = now - self.max_age
        for key in [k for k, stamp in self._nonces.items() if stamp < horizon]:
            del self._nonces[key]


@dataclass(frozen=True, slots=True)
class OAuth2Client:
    """An integration record with an uploaded certificate (public key PEM) for the client-credentials flow."""

    client_id: str
    certificate_id: str
    public_key_pem: str
    scopes: tuple[str, ...] = ("rest_webservices", "restlets", "suite_analytics")


@lru_cache(maxsize=1)
def _signing_key() -> rsa.RSAPrivateKey:
    # One key per process: generating RSA keys is slow, and the tokens only need to look like NetSuite's.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class OAuth2Issuer:
    """The token endpoint: verifies JWT client assertions and issues PS256 access tokens."""

    def __init__(
        self,
        clients: Sequence[OAuth2Client],
        *,
        account_id: str,
        lifetime: int = 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._by_kid = {c.certificate_id: c for c in clients}
        self.account_id = account_id
        self.lifetime = lifetime
        self.clock = clock
        self._tokens: dict[str, tuple[str, float]] = {}
        self._used_jti: set[str] = set()
        self.issued = 0

    def issue(self, form: Mapping[str, str], token_url: str) -> dict[str, Any]:
        """Answer a token request; raises ``AuthFailure`` whose reason starts with the OAuth error code."""
        if form.get("grant_type") != "client_credentials":
            raise AuthFailure("unsupported_grant_type: grant_type must be client_credentials")
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise AuthFailure("invalid_request: client_assertion_type must be jwt-bearer")
        assertion = form.get("client_assertion", "")
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            raise AuthFailure("invalid_request: client_assertion is not a JWT") from None
        client = self._by_kid.get(str(header.get("kid", "")))
        if client is None:
            raise AuthFailure("invalid_client: unknown certificate id (kid)")
        alg = header.get("alg")
        if alg not in ASYMMETRIC_ALGORITHMS:
            raise AuthFailure(f"invalid_client: algorithm {alg!r} not allowed")
        try:
            claims = jwt.decode(
                assertion,
                client.public_key_pem,
                algorithms=[str(alg)],
                audience=token_url,
                issuer=client.client_id,
                options={"require": ["exp", "iat", "iss", "aud"]},
                leeway=5,
            )
        except (jwt.InvalidSignatureError, jwt.InvalidKeyError):
            # Signed with another key, or with an algorithm that does not fit the certificate's key.
            raise AuthFailure("invalid_client: assertion signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise AuthFailure(f"invalid_grant: {exc}") from None
        if int(claims["exp"]) - int(claims["iat"]) > 3600:
            raise AuthFailure("invalid_grant: exp more than 60 minutes after iat")
        scope = claims.get("scope", "")
        scopes = scope if isinstance(scope, list) else re.split(r"[ ,]+", str(scope))
        if "rest_webservices" not in scopes or not set(scopes) <= set(client.scopes):
            raise AuthFailure("invalid_scope: scope must include rest_webservices")
        jti = claims.get("jti")
        if jti is not None:
            if jti in self._used_jti:
                raise AuthFailure("invalid_grant: assertion replayed")
            self._used_jti.add(str(jti))

        now = self.clock()
        token = jwt.encode(
            {
                "iss": "https://system.netsuite.com",
                "sub": client.client_id,
                "aud": self.account_id,
                "iat": int(now),
                "exp": int(now) + self.lifetime,
                "jti": secrets.token_hex(16),
            },
            _signing_key(),
            algorithm="PS256",
            headers={"kid": "rb-sim"},
        )
        self._tokens[token] = (client.client_id, now + self.lifetime)
        self.issued += 1
        # NetSuite sends expires_in as a string.
        return {"access_token": token, "expires_in": str(self.lifetime), "token_type": "Bearer"}

    def verify_bearer(self, token: str) -> str:
        """The client id of a live access token; AuthFailure otherwise."""
        entry = self._tokens.get(token)
        if entry is None:
            raise AuthFailure("unknown access token")
        if self.clock() >= entry[1]:
            raise AuthFailure("access token expired")
        return entry[0]

    def expire_all(self) -> int:
        """Make every issued token expire now (control route), as a token lifetime ending would."""
        count = len(self._tokens)
        self._tokens = {t: (c, 0.0) for t, (c, _) in self._tokens.items()}
        return count
