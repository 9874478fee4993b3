"""The Service Tag Discovery API of Azure Resource Manager: one cloud's answer, every page of it.

    raw = fetch_api(ApiRequest(get_cloud("public"), subscription="..."), HttpSettings())

``GET {arm}/subscriptions/{id}/providers/Microsoft.Network/locations/{location}/serviceTags
?api-version=2024-07-01`` (operation ServiceTags_List of Azure/azure-rest-api-specs,
specification/network/resource-manager/Microsoft.Network/stable/2024-07-01/serviceTags.json, at
commit 3cab51ba6ff8243bba2a305420128f9db9047f98). The location is only "a reference for version":
every region's tags of the subscription's cloud come back. An answer may name a ``nextLink``
(examples/ServiceTagsList.json shows one); the pages are followed and joined into one document
(the first page's fields, every page's ``values``, no ``nextLink``), which is what is parsed and
stored (resolver/parse.py reads it as an API answer, for the cloud's API timeline).

A bearer token for Resource Manager comes from ``AZURE_ACCESS_TOKEN`` when set (for example
``az account get-access-token --query accessToken -o tsv``), else from azure-identity's
``DefaultAzureCredential`` (the optional extra ``aztags[azure]``: managed identity, the az CLI
login, environment credentials, workload identity) with the cloud's authority and scope. The
token is sent only to the Resource Manager host asked (a redirect or a nextLink to another host is
refused) and never appears in a log line, an error or the database.

Each cloud has its own Resource Manager; Microsoft Cloud Germany closed in 2021 and has none.
``arm_endpoint`` (``--arm-endpoint``, ``AZTAGS_ARM_ENDPOINT``) replaces the host, for private
endpoints and for tests on 127.0.0.1; the token's scope stays the cloud's.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from resolver.clouds import Cloud
from resolver.errors import FetchError, UsageError
from resolver.ingest import RawFile
from resolver.sources.base import NETWORK_ADVICE, HttpSettings
from resolver.sources.names import redact_url, scrub

if TYPE_CHECKING:
    import sqlite3
    from datetime import datetime

    import requests

    from cache.store import SaveOptions
    from resolver.refresh import RefreshResult

_LOG = logging.getLogger(__name__)

API_VERSION = "2024-07-01"  # the newest stable serviceTags.json read (see the module docstring)
TOKEN_VARIABLE = "AZURE_ACCESS_TOKEN"
ENDPOINT_VARIABLE = "AZTAGS_ARM_ENDPOINT"


@dataclass(frozen=True, slots=True)
class ArmCloud:
    """Where a cloud's Resource Manager and its sign-in authority are."""

    endpoint: str  # Resource Manager, also the token's audience
    authority: str  # Microsoft Entra ID host (azure.identity.AzureAuthorityHosts)
    location: str  # a default location of the cloud: only a reference for the version


# The clouds' Resource Manager endpoints and Entra ID authorities (AzureAuthorityHosts of
# azure-identity: AZURE_PUBLIC_CLOUD, AZURE_GOVERNMENT, AZURE_CHINA).
ARM_CLOUDS: Mapping[str, ArmCloud] = {
    "public": ArmCloud("https://management.azure.com", "login.microsoftonline.com", "westus"),
    "usgov": ArmCloud(
        "https://management.usgovcloudapi.net", "login.microsoftonline.us", "usgovvirginia"
    ),
    "china": ArmCloud(
        "https://management.chinacloudapi.cn", "login.chinacloudapi.cn", "chinaeast2"
    ),
}

_SUBSCRIPTION = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_LOCATION = re.compile(r"[a-z][a-z0-9]{1,39}")
MAX_PAGES = 1000  # a server whose nextLinks never end is cut off here
MAX_RETRY_AFTER = 120.0  # seconds; a longer Retry-After fails the fetch with its value


class Token(Protocol):
    token: str


class Credential(Protocol):
    """What azure-identity's credentials offer (``azure.core.credentials.TokenCredential``)."""

    def get_token(self, *scopes: str) -> Token: ...


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One cloud's Discovery API call: the subscription it is asked through, a location (the
    cloud's default when None) and, for private endpoints and tests, another Resource Manager
    base URL."""

    cloud: Cloud
    subscription: str
    location: str | None = None
    arm_endpoint: str | None = None

    def checked(self) -> tuple[ArmCloud, str, str, str]:
        """(the cloud's ARM settings, base URL, subscription, location) or a UsageError."""
        arm = ARM_CLOUDS.get(self.cloud.key)
        if arm is None:
            raise UsageError(
                f"{self.cloud.name} has no Service Tag Discovery API: Microsoft Cloud Germany "
                "closed in October 2021 and its Resource Manager is gone. Its last file "
                "(ServiceTags_AzureGermany_20220307) is all there is: 'aztags fetch --cloud "
                "germany' stores it."
            )
        subscription = self.subscription.strip()
        if not _SUBSCRIPTION.fullmatch(subscription):
            raise UsageError(
                f"--subscription {subscription[:60]!r} is not a subscription id; give the GUID "
                "of a subscription in this cloud (az account show --query id -o tsv)."
            )
        location = (self.location or arm.location).strip().lower()
        if not _LOCATION.fullmatch(location):
            raise UsageError(
                f"--location {location[:60]!r} is not an Azure location code; give one such as "
                f"{arm.location} (az account list-locations --query '[].name')."
            )
        base = (self.arm_endpoint or arm.endpoint).strip().rstrip("/")
        if not re.match(r"https?://[^/?#]+$", base, re.IGNORECASE):
            raise UsageError(
                f"--arm-endpoint {redact_url(base)[:80]!r} is not a base URL such as "
                f"{arm.endpoint} (a scheme and a host, no path)."
            )
        return arm, base, subscription, location


def scope(cloud: Cloud) -> str:
    """The token scope of a cloud's Resource Manager (its endpoint + ``/.default``)."""
    arm = ARM_CLOUDS.get(cloud.key)
    if arm is None:
        raise UsageError(f"{cloud.name} has no Resource Manager to sign in to.")
    return f"{arm.endpoint}/.default"


def default_credential(cloud: Cloud) -> Credential:
    """azure-identity's DefaultAzureCredential for the cloud's authority, or a FetchError that
    says how to install it (or how to do without)."""
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError:
        raise FetchError(
            "Signing in to Azure needs the azure-identity package, which is not installed: "
            "install it with pip install 'aztags[azure]', or set AZURE_ACCESS_TOKEN to a bearer "
            "token for Resource Manager (az account get-access-token --query accessToken -o tsv)."
        ) from None
    arm = ARM_CLOUDS[cloud.key]
    credential: Credential = DefaultAzureCredential(authority=arm.authority)
    return credential


def bearer_token(
    cloud: Cloud,
    *,
    credential: Credential | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """``AZURE_ACCESS_TOKEN`` when set, else a token from ``credential`` (by default
    azure-identity's DefaultAzureCredential) for the cloud's Resource Manager scope."""
    env = os.environ if environ is None else environ
    given = env.get(TOKEN_VARIABLE, "").strip()
    if given:
        if not given.isascii() or not given.isprintable() or " " in given:
            raise UsageError(
                f"{TOKEN_VARIABLE} holds something that is not a bearer token (spaces, control "
                "or non-ASCII characters); set it to the token alone."
            )
        return given
    if credential is None:
        credential = default_credential(cloud)
    try:
        token = credential.get_token(scope(cloud)).token
    except Exception as exc:  # noqa: BLE001 - azure-identity raises several kinds; each is said
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FetchError(
            f"Could not sign in to {cloud.name} Resource Manager with azure-identity "
            f"({type(exc).__name__}: {scrub(reason)[:300]}). Sign in (az login, a managed "
            f"identity, AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET), or set "
            f"{TOKEN_VARIABLE}."
        ) from None
    if not isinstance(token, str) or not token:
        raise FetchError("azure-identity returned an empty token; sign in again.")
    return token


def fetch_api(
    request: ApiRequest,
    settings: HttpSettings,
    *,
    credential: Credential | None = None,
    environ: Mapping[str, str] | None = None,
    log: logging.Logger | None = None,
    session: requests.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RawFile:
    """The cloud's whole answer (every page joined) as a RawFile for resolver.refresh.store_file.

    401 (with the server's WWW-Authenticate reason), 403, 404 and other refusals, 429 (waited
    out per Retry-After, within the retries and the deadline), 5xx (retried with backoff, as
    file downloads are), timeouts and truncated bodies each give one FetchError sentence.
    """
    from resolver.sources.http import deadline_scope, session_scope

    log = log or _LOG
    _arm, base, subscription, location = request.checked()
    token = bearer_token(request.cloud, credential=credential, environ=environ)
    url = (
        f"{base}/subscriptions/{subscription}/providers/Microsoft.Network/locations/"
        f"{location}/serviceTags?api-version={API_VERSION}"
    )
    shown = _shown_url(url)
    pages: list[dict[str, Any]] = []
    seen: set[str] = set()
    with deadline_scope(settings), session_scope(session, settings) as sess:
        next_url: str | None = url
        while next_url is not None:
            if len(pages) >= MAX_PAGES or next_url in seen:
                raise FetchError(
                    f"{shown} kept answering with more pages ({len(pages)} read, or a page "
                    "linking back to one already read); gave up. Try again later."
                )
            seen.add(next_url)
            _same_host(base, next_url, shown)
            page = _get_page(sess, next_url, token, settings, log, sleep)
            pages.append(page)
            link = page.get("nextLink")
            next_url = link if isinstance(link, str) and link else None
    log.info("Read %s: %d page(s)", shown, len(pages))
    data = _join(pages, shown)
    return RawFile(data=data, source=shown)


def _shown_url(url: str) -> str:
    """The URL as stored and shown: without its query (nextLinks carry skip tokens)."""
    return redact_url(url).removesuffix("?***")


def _same_host(base: str, url: str, shown: str) -> None:
    """The token goes to the Resource Manager host asked, and nowhere else."""
    want, got = urlsplit(base), urlsplit(url)
    if (want.scheme.lower(), want.netloc.lower()) != (got.scheme.lower(), got.netloc.lower()):
        raise FetchError(
            f"{shown} sent a nextLink to another host ({redact_url(url)[:120]}); it was not "
            "followed, so that the token is sent to Resource Manager only. Try again later."
        )


def _get_page(
    sess: requests.Session,
    url: str,
    token: str,
    settings: HttpSettings,
    log: logging.Logger,
    sleep: Callable[[float], None],
) -> dict[str, Any]:
    """One page: GET with the token, 429 waited out, the body decoded as a JSON object."""
    import requests

    from resolver.parse import decode_json
    from resolver.sources.http import (
        deadline_error,
        deadline_passed,
        decode_wire,
        describe,
        read_body,
        timeouts,
    )

    shown = _shown_url(url)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    throttled = 0
    while True:
        if deadline_passed():
            raise deadline_error(url, settings)
        log.info("Asking %s", shown)
        try:
            resp = sess.get(
                url, headers=headers, timeout=timeouts(settings), stream=True, allow_redirects=False
            )
        except (requests.RequestException, ValueError) as exc:
            if deadline_passed():
                raise deadline_error(url, settings) from None
            why = describe(exc, settings, url).replace(token, "***")
            raise FetchError(f"Could not reach {shown}: {why}. {NETWORK_ADVICE}") from None
        with resp:
            if resp.status_code == 429:
                wait = _retry_after(resp.headers.get("Retry-After"))
                throttled += 1
                if throttled > settings.retries or wait is None or wait > MAX_RETRY_AFTER:
                    after = resp.headers.get("Retry-After", "")[:40]
                    raise FetchError(
                        f"{shown} answered HTTP 429 Too Many Requests "
                        f"{throttled} time{'s' if throttled != 1 else ''}"
                        + (f" (Retry-After: {after})" if after else "")
                        + "; Resource Manager throttles this subscription: try again after that."
                    )
                log.info("%s: HTTP 429, waiting %gs (Retry-After)", shown, wait)
                sleep(min(wait, _remaining()))
                continue
            if resp.status_code != 200:
                raise _refused(shown, resp, token)
            wire = read_body(resp, url, settings, None)
            encoding = resp.headers.get("Content-Encoding")
        data, _ = decode_wire(wire, encoding, url, settings)
        doc = decode_json(data, shown)
        if not isinstance(doc, dict):
            raise FetchError(
                f"{shown} answered with a JSON {type(doc).__name__}, not a service tags "
                "object; check --arm-endpoint."
            )
        return doc


def _remaining() -> float:
    from resolver.sources.http import _ACTIVE

    deadline = _ACTIVE.get()
    return deadline.remaining() if deadline is not None else MAX_RETRY_AFTER


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date); None if absent or
    not readable."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit() and len(text) < 10:
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _refused(shown: str, resp: requests.Response, token: str) -> FetchError:
    """The sentence for a non-200 answer: the status, what Resource Manager said (its error
    code and message, or WWW-Authenticate's reason), and what to try. No token in it."""
    status = resp.status_code
    said = _arm_error(resp)
    if status == 401:
        challenge = _challenge(resp.headers.get("WWW-Authenticate", ""))
        reason = challenge or said or "no reason given"
        advice = (
            "The token was refused: get a new one (az account get-access-token), check that it "
            "is for this cloud's Resource Manager, or unset AZURE_ACCESS_TOKEN to sign in with "
            "azure-identity."
        )
    elif status == 403:
        reason = said or "access denied"
        advice = (
            "The identity may not read this subscription: it needs a role with "
            "Microsoft.Network/locations/serviceTags/read (Reader is enough)."
        )
    elif status == 404:
        reason = said or "not found"
        advice = "Check --subscription (a subscription of this cloud) and --location."
    elif status >= 500:
        from resolver.sources.http import _retry_count

        tries = _retry_count(resp) + 1
        reason = said or (resp.reason or "server error")
        advice = (
            f"Resource Manager failed {tries} time{'s' if tries != 1 else ''}; try again later."
        )
    elif 300 <= status < 400:
        reason = "a redirect"
        advice = (
            "Redirects are not followed, so that the token goes to Resource Manager only; "
            "check --arm-endpoint."
        )
    else:
        reason = said or (resp.reason or "refused")
        advice = "Check --subscription, --location and --arm-endpoint."
    text = f"{shown} answered HTTP {status}: {reason}. {advice}"
    return FetchError(scrub(text.replace(token, "***")))


def _arm_error(resp: requests.Response) -> str:
    """``code: message`` from Resource Manager's error body ({"error": {...}}), cut short."""
    try:
        body = resp.raw.read(64 * 1024, decode_content=True)
        doc = json.loads(body)
    except Exception:  # noqa: BLE001 - a body that is not ARM's JSON just says nothing
        return ""
    error = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(error, dict):
        return ""
    parts = [str(error.get(k, "")) for k in ("code", "message") if error.get(k)]
    text = ": ".join(parts)
    return _printable(text, 300)


def _challenge(header: str) -> str:
    """The reason in a WWW-Authenticate challenge (error, error_description), cut short."""
    found = dict(re.findall(r'(\w+)="([^"]*)"', header))
    parts = [found[k] for k in ("error", "error_description") if found.get(k)]
    return _printable(": ".join(parts), 300)


def _printable(text: str, limit: int) -> str:
    text = "".join(c if c.isprintable() else " " for c in text).strip()
    return text if len(text) <= limit else text[:limit] + "..."


def _join(pages: list[dict[str, Any]], shown: str) -> bytes:
    """The pages as one answer: the first page's fields, every page's values, no nextLink.

    Pages of one answer share its changeNumber and cloud; pages that do not were read while
    the answer changed, and are refused rather than mixed."""
    first = pages[0]
    if len(pages) == 1:  # the usual answer: as it came (the parser names a bad "values")
        return json.dumps({k: v for k, v in first.items() if k != "nextLink"}).encode("utf-8")
    values: list[Any] = []
    for number, page in enumerate(pages, start=1):
        for key in ("changeNumber", "cloud"):
            if page.get(key) != first.get(key):
                raise FetchError(
                    f"{shown}: page {number} has {key} {str(page.get(key))[:40]!r}, the first "
                    f"page {str(first.get(key))[:40]!r}: the answer changed while it was read. "
                    "Try again."
                )
        page_values = page.get("values")
        if not isinstance(page_values, list):
            raise FetchError(
                f"{shown}: page {number} of the answer has no list of values; the answer is "
                "not one this version of aztags can read. Try again later."
            )
        values.extend(page_values)
    joined = {k: v for k, v in first.items() if k != "nextLink"}
    joined["values"] = values
    return json.dumps(joined).encode("utf-8")


def refresh_api(
    conn: sqlite3.Connection,
    request: ApiRequest,
    settings: HttpSettings,
    options: SaveOptions,
    *,
    credential: Credential | None = None,
    environ: Mapping[str, str] | None = None,
    now: datetime | None = None,
    log: logging.Logger | None = None,
    session: requests.Session | None = None,
) -> RefreshResult:
    """Ask the Discovery API (:func:`fetch_api`), validate the answer and store it on the
    cloud's API timeline, in one transaction (resolver.refresh.store_file). Change alerts follow
    the file's timeline only, so none are raised here."""
    from resolver.refresh import RefreshResult, store_file

    raw = fetch_api(
        request, settings, credential=credential, environ=environ, log=log, session=session
    )
    result = store_file(conn, raw, options, request.cloud, now=now)
    return RefreshResult(request.cloud, raw.source, result)
