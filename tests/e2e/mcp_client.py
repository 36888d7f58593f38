"""An MCP client on the official Python SDK (PyPI `mcp`) behind the scopegate filter, end to end.

`mcp.Client` over `streamable_http_client`, whose httpx2 client authenticates with the SDK's
`OAuthClientProvider` (an httpx2 `Auth`): the gateway's 401 starts discovery (RFC 9728
metadata named by the challenge, then the IdP's RFC 8414 metadata), code + PKCE at the demo IdP
(`examples/idp/idp.mjs`) as the pre-registered public client `scopegate-mcp-python`; a 403
insufficient_scope makes the provider re-authorize with the union of the scope it asked for
before, the token's scope and the challenge's (SEP-2350) and resend the request, once.

The user at the IdP is driven with httpx2 (no browser), as tests/e2e/idp-user.mjs does for
the TypeScript clients: login form, consent page (the scopes of `--decline-at-first` are left
unticked on the first one), and the loopback redirect whose code goes to the SDK.

Scenario: connect, `echo`, `get-env` (403, step-up), `echo` again, on the same client.
`--mode legacy` (the 2025 revision, a session) or `--mode 2026-07-28` (stateless, the Mcp-*
headers). Prints one line, `mcp-e2e: {...}`, with the fields of mcp-client.mjs's transcript.

`--tamper get-env=echo`: an httpx2 request hook rewrites the `Mcp-Name` header of every
`tools/call get-env` to `echo`, so that header and body disagree; the call's record keeps
the error the SDK raised (`error_class`, `code`, `error`, `error_data`).

Usage: .venv/bin/python mcp_client.py --mcp http://127.0.0.1:8080/mcp --user alice
       [--mode 2026-07-28] [--decline-at-first mcp:admin] [--tamper get-env=echo]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import re
import sys
import traceback
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlparse

import httpx2
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

REDIRECT_URI = "http://127.0.0.1/callback"
CLIENT_ID = "scopegate-mcp-python"

parser = argparse.ArgumentParser()
parser.add_argument("--mcp", default="http://127.0.0.1:8080/mcp")
parser.add_argument("--user", default="alice")
parser.add_argument("--mode", default="legacy")
parser.add_argument("--decline-at-first", action="append", default=[])
parser.add_argument("--tamper")
args = parser.parse_args()

transcript: dict[str, Any] = {
    "sdk": "mcp (PyPI)",
    "scenario": "sdk",
    "protocol": args.mode,
    "user": args.user,
    "client_id": CLIENT_ID,
    "challenges": [],
    "authorization_requests": [],
    "consents": [],
    "tokens": [],
    "calls": [],
    "discovery": [],
    "requests": [],
    "sessions": [],
}


def claims_of(jwt: str) -> dict[str, Any] | None:
    try:
        part = jwt.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except Exception:
        return None


def rpc_of(body: bytes) -> str | None:
    try:
        message = json.loads(body)
    except Exception:
        return None
    if not isinstance(message, dict) or not isinstance(message.get("method"), str):
        return None
    name = (message.get("params") or {}).get("name")
    return f"{message['method']} {name}" if name else message["method"]


TAMPER: list[str] | None = args.tamper.split("=") if args.tamper else None


async def on_request(request: httpx2.Request) -> None:
    """`--tamper body=header`: every `tools/call body` goes out with `Mcp-Name: header`."""
    if TAMPER and str(request.url).startswith(args.mcp) and request.method == "POST":
        if rpc_of(request.content) == f"tools/call {TAMPER[0]}":
            request.headers["mcp-name"] = TAMPER[1]
            request.extensions["scopegate_tampered"] = True


async def on_response(response: httpx2.Response) -> None:
    """Records what the SDK's requests met: the MCP endpoint, challenges, discovery."""
    request = response.request
    url = str(request.url)
    path = request.url.path
    body = request.content if request.method == "POST" else b""
    if url.startswith(args.mcp):
        text = None
        if response.status_code >= 400:
            await response.aread()
            text = response.text
        transcript["requests"].append(
            {
                "method": request.method,
                "rpc": rpc_of(body),
                "mcp_method": request.headers.get("mcp-method"),
                "mcp_name": request.headers.get("mcp-name"),
                "mcp_protocol_version": request.headers.get("mcp-protocol-version"),
                "status": response.status_code,
                "body": text,
                "content_type": response.headers.get("content-type") if text is not None else None,
                "tampered": bool(request.extensions.get("scopegate_tampered")),
            }
        )
        session = response.headers.get("mcp-session-id")
        if session and session not in transcript["sessions"]:
            transcript["sessions"].append(session)
    challenge = response.headers.get("www-authenticate")
    if challenge:
        await response.aread()
        transcript["challenges"].append(
            {
                "method": request.method,
                "url": url,
                "rpc": rpc_of(body),
                "status": response.status_code,
                "www_authenticate": challenge,
                "body": response.text,
            }
        )
    if path.startswith("/.well-known/oauth-protected-resource"):
        await response.aread()
        try:
            document = response.json()
        except Exception:
            document = None
        transcript["discovery"].append({"url": url, "status": response.status_code, "document": document})
    elif "/.well-known/" in path:
        transcript["discovery"].append({"url": url, "status": response.status_code})


def page_text(html: str) -> str:
    html = re.sub(r"^[\s\S]*<body>", "", html)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


class User:
    """The user at the IdP: follows redirects, signs in, ticks scopes, stops at the redirect."""

    def __init__(self, name: str, decline_at_first: list[str]) -> None:
        self.name = name
        self.decline_at_first = set(decline_at_first)
        self.consents = 0
        self.browser = httpx2.AsyncClient(follow_redirects=False)

    async def authorize(self, authorization_url: str) -> dict[str, str]:
        url = authorization_url
        method, data = "GET", None
        for _ in range(20):
            if url.startswith(f"{REDIRECT_URI}?"):
                return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
            if data is None:
                response = await self.browser.request(method, url)
            else:
                response = await self.browser.request(
                    method,
                    url,
                    content=urlencode(data).encode(),
                    headers={"content-type": "application/x-www-form-urlencoded"},
                )
            if 300 <= response.status_code < 400:
                url = urljoin(url, response.headers["location"])
                method, data = "GET", None
                continue
            html = response.text
            form = re.search(r'<form method="post" action="([^"]+)"', html)
            if not form:
                raise RuntimeError(f"the IdP answered {response.status_code} at {url}: {page_text(html)[:300]}")
            action = urljoin(url, form.group(1))
            if action.endswith("/login"):
                data = [("username", self.name), ("password", self.name)]
            elif action.endswith("/consent"):
                offered = re.findall(r'name="scope" value="([^"]+)"', html)
                first = self.consents == 0
                self.consents += 1
                approved = [s for s in offered if not (first and s in self.decline_at_first)]
                transcript["consents"].append({"offered": offered, "approved": approved, "page": page_text(html)})
                data = [("scope", s) for s in approved]
            else:
                raise RuntimeError(f"an unexpected form at {url}: {action}")
            url, method = action, "POST"
        raise RuntimeError("more than 20 redirects at the IdP")


class Storage:
    """The SDK's TokenStorage, in memory, with the client pre-registered at the IdP."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client = OAuthClientInformationFull(
            client_id=CLIENT_ID,
            redirect_uris=[REDIRECT_URI],
            token_endpoint_auth_method="none",
            grant_types=["authorization_code"],
            response_types=["code"],
        )

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens
        claims = claims_of(tokens.access_token) or {}
        transcript["tokens"].append(
            {
                "scope": tokens.scope,
                "refresh_token": bool(tokens.refresh_token),
                "access_token": tokens.access_token,
                "claims": {k: claims.get(k) for k in ("iss", "aud", "sub", "scope")},
            }
        )

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


async def scenario() -> None:
    user = User(args.user, args.decline_at_first)
    answer: dict[str, str] = {}

    async def redirect_handler(authorization_url: str) -> None:
        parsed = urlparse(authorization_url)
        params = {k: v[0] for k, v in parse_qs(parsed.query).items()}
        transcript["authorization_requests"].append(
            {
                "endpoint": f"{parsed.scheme}://{parsed.netloc}{parsed.path}",
                "client_id": params.get("client_id"),
                "scope": params.get("scope"),
                "resource": params.get("resource"),
                "response_type": params.get("response_type"),
                "code_challenge_method": params.get("code_challenge_method"),
                "code_challenge": bool(params.get("code_challenge")),
                "redirect_uri": params.get("redirect_uri"),
                "state": bool(params.get("state")),
            }
        )
        answer.clear()
        answer.update(await user.authorize(authorization_url))

    async def callback_handler() -> AuthorizationCodeResult:
        if "error" in answer:
            raise RuntimeError(f"the IdP refused: {answer['error']}: {answer.get('error_description')}")
        return AuthorizationCodeResult(code=answer["code"], state=answer.get("state"), iss=answer.get("iss"))

    provider = OAuthClientProvider(
        server_url=args.mcp,
        client_metadata=OAuthClientMetadata(
            client_name="scopegate e2e MCP client (Python SDK)",
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=Storage(),
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )
    http = httpx2.AsyncClient(auth=provider, event_hooks={"request": [on_request], "response": [on_response]}, timeout=30)
    transport = streamable_http_client(args.mcp, http_client=http)
    async with http, Client(transport, mode=args.mode) as client:
        transcript["negotiated_protocol_version"] = client.protocol_version
        for name, arguments in (("echo", {"message": "hello"}), ("get-env", {}), ("echo", {"message": "still here"})):
            before = len(transcript["authorization_requests"])
            challenges = len(transcript["challenges"])
            record: dict[str, Any] = {"tool": name}
            transcript["calls"].append(record)
            try:
                result = await client.call_tool(name, arguments)
                record["ok"] = not result.is_error
                record["text"] = result.content[0].text if result.content else None
            except Exception as error:  # the 403 the step-up did not cure
                record["ok"] = False
                record["error"] = f"{type(error).__name__}: {error}"
                status = getattr(getattr(error, "response", None), "status_code", None)
                record["code"] = status if status is not None else getattr(error, "code", None)
                record["error_class"] = type(error).__name__
                record["error_message"] = getattr(error, "message", None)
                record["error_data"] = getattr(error, "data", None)
            # A sign-in in the call (on the 2026 revision the first call meets the 401: there is
            # no handshake before it) is not a step-up; an authorization request after a 403 is.
            signed_in = any(c["status"] == 401 for c in transcript["challenges"][challenges:])
            record["signed_in"] = signed_in
            record["step_ups"] = len(transcript["authorization_requests"]) - before - int(signed_in)


async def main() -> int:
    try:
        await asyncio.wait_for(scenario(), 60)
        code = 0
    except BaseException as error:  # noqa: BLE001 - the transcript says what happened
        transcript["error"] = "".join(traceback.format_exception(error))
        code = 1
    print(f"mcp-e2e: {json.dumps(transcript)}", flush=True)
    return code


sys.exit(asyncio.run(main()))
