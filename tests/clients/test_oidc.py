"""OIDC single sign-on against a real OpenID provider: the certified `oidc-provider` from npm (tests/oidc).

The provider runs on loopback and issues RS256 JWT access tokens through the client_credentials grant, with
the resource indicator as `aud` and `groups`/`project` claims. A gateway of its own is configured with

    [auth]
    anonymous = false
    oidc = { issuer = "<provider>", audience = "urn:tandem", groups_claim = "groups" }

and must accept the provider's token for `urn:tandem`, and refuse with 401 a token whose signature was
tampered with, a token for another audience, a token naming an unknown key, and a request without credentials.

`tests/oidc/node_modules` must be installed first: `npm ci --prefix tests/oidc` (`cargo xtask setup` does it).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

import harness
from harness import HELLO

OIDC_DIR = Path(__file__).resolve().parent.parent / "oidc"
AUDIENCE = "urn:tandem"
OTHER_AUDIENCE = "urn:other"
CLIENT = ("tandem-test", "tandem-test-secret")
GROUPS = ["eng", "platform"]


@dataclass
class Provider:
    """The OpenID provider process and its issuer URL."""

    process: harness.Process
    issuer: str

    def token(self, resource: str = AUDIENCE) -> str:
        """An access token for `resource`, through the client_credentials grant."""
        response = httpx.post(
            f"{self.issuer}/token",
            auth=CLIENT,
            data={"grant_type": "client_credentials", "resource": resource, "scope": "api"},
            timeout=10.0,
            trust_env=False,
        )
        assert response.status_code == 200, f"token request failed: {response.status_code} {response.text}"
        body = response.json()
        assert body["token_type"] == "Bearer", body
        return body["access_token"]

    def jwks(self) -> dict:
        response = httpx.get(f"{self.issuer}/jwks", timeout=10.0, trust_env=False)
        response.raise_for_status()
        return response.json()


def b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def decode_part(token: str, index: int) -> dict:
    return json.loads(b64decode(token.split(".")[index]))


def with_header(token: str, **fields: str) -> str:
    """The token with header fields replaced (which also breaks its signature)."""
    header_part, payload_part, signature_part = token.split(".")
    header = json.loads(b64decode(header_part))
    header.update(fields)
    return ".".join([b64encode(json.dumps(header, separators=(",", ":")).encode()), payload_part, signature_part])


def tampered_signature(token: str) -> str:
    """The token with one byte of its signature flipped."""
    header_part, payload_part, signature_part = token.split(".")
    signature = bytearray(b64decode(signature_part))
    signature[len(signature) // 2] ^= 0x01
    return ".".join([header_part, payload_part, b64encode(bytes(signature))])


@pytest.fixture(scope="module")
def provider(run_dir: Path) -> Provider:
    node = os.environ.get("TANDEM_NODE") or shutil.which("node")
    if not node:
        pytest.fail("node is not on PATH; the OIDC tests need Node.js 20 or later", pytrace=False)
    if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail(f"{OIDC_DIR}/node_modules is missing; run `npm ci --prefix tests/oidc`", pytrace=False)
    port = harness.free_port()
    process = harness.Process(
        name="oidc-provider",
        argv=[node, str(OIDC_DIR / "server.js"), str(port)],
        log_path=run_dir / "oidc-provider.log",
    )
    process.start()
    provider = Provider(process=process, issuer=f"http://127.0.0.1:{port}")
    try:
        harness.wait_until_ready(process, f"{provider.issuer}/.well-known/openid-configuration")
    except BaseException:
        process.stop()
        raise
    yield provider
    process.stop()


@pytest.fixture(scope="module")
def oidc_gateway(tandem_bin: str, testkit: harness.Testkit, run_dir: Path, provider: Provider):
    """A gateway that accepts only OIDC tokens from `provider` for audience `urn:tandem`."""
    auth = f"""
[auth]
anonymous = false
oidc = {{ issuer = {json.dumps(provider.issuer)}, audience = "{AUDIENCE}", groups_claim = "groups" }}
"""
    gw = harness.start_gateway(
        tandem_bin,
        testkit,
        run_dir / "oidc-gateway",
        name="tandem serve (oidc)",
        max_body_bytes=1024 * 1024,
        extra_config=auth,
    )
    yield gw
    gw.process.stop()


def chat(gateway: harness.Gateway, token: str | None) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers=headers,
        json={"model": "tk/scripted", "messages": [{"role": "user", "content": "Say hello."}]},
        timeout=30.0,
        trust_env=False,
    )


def assert_unauthorized(response: httpx.Response, token: str | None) -> None:
    assert response.status_code == 401, f"expected 401, got {response.status_code}: {response.text}"
    error = response.json()["error"]
    assert error["message"], error
    if token:
        assert token not in response.text, "the error echoes the token"
        assert token.split(".")[-1] not in response.text, "the error echoes the token's signature"


# --- the provider itself (independent of the gateway) -----------------------------------------------------


def test_provider_issues_jwts_signed_by_a_key_in_its_jwks(provider: Provider):
    token = provider.token()
    header, claims = decode_part(token, 0), decode_part(token, 1)
    assert header["alg"] == "RS256"
    kids = {key["kid"] for key in provider.jwks()["keys"]}
    assert header["kid"] in kids, f"kid {header['kid']} not in the JWKS {kids}"
    assert claims["iss"] == provider.issuer
    assert claims["aud"] == AUDIENCE
    assert claims["groups"] == GROUPS
    assert claims["sub"] == CLIENT[0]
    assert claims["exp"] > claims["iat"]
    assert decode_part(provider.token(OTHER_AUDIENCE), 1)["aud"] == OTHER_AUDIENCE


# --- the gateway with [auth] oidc ---------------------------------------------------------------------------


def test_a_valid_token_is_accepted(oidc_gateway: harness.Gateway, provider: Provider):
    client = openai.OpenAI(base_url=f"{oidc_gateway.url}/v1", api_key=provider.token(), max_retries=0, timeout=30.0)
    completion = client.chat.completions.create(model="tk/scripted", messages=[{"role": "user", "content": "Say hello."}])
    assert completion.choices[0].message.content == HELLO


def test_a_tampered_signature_is_refused(oidc_gateway: harness.Gateway, provider: Provider):
    token = tampered_signature(provider.token())
    assert_unauthorized(chat(oidc_gateway, token), token)


def test_a_token_for_another_audience_is_refused(oidc_gateway: harness.Gateway, provider: Provider):
    token = provider.token(OTHER_AUDIENCE)
    response = chat(oidc_gateway, token)
    assert_unauthorized(response, token)
    assert "audience" in response.json()["error"]["message"], response.text


def test_a_token_naming_an_unknown_key_is_refused(oidc_gateway: harness.Gateway, provider: Provider):
    token = with_header(provider.token(), kid="not-a-key-of-the-issuer")
    assert_unauthorized(chat(oidc_gateway, token), token)


def test_a_request_without_credentials_is_refused(oidc_gateway: harness.Gateway):
    response = chat(oidc_gateway, None)
    assert_unauthorized(response, None)
    assert "missing API key" in response.json()["error"]["message"], response.text


def test_the_sdk_sees_an_authentication_error(oidc_gateway: harness.Gateway, provider: Provider):
    client = openai.OpenAI(
        base_url=f"{oidc_gateway.url}/v1", api_key=tampered_signature(provider.token()), max_retries=0, timeout=30.0
    )
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="tk/scripted", messages=[{"role": "user", "content": "Say hello."}])
