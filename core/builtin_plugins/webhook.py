"""Built-in plugin: HTTP POST of each event as JSON to a configured URL, with timeout and retries."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from core.builtin_plugins.snapshot import parse_kinds
from core.errors import GhostFaceError
from core.plugins import Setting
from core.types import EventKind, RecognitionEvent

__all__ = ["Webhook", "WebhookError", "redact_url", "validate_url"]

log = logging.getLogger(__name__)

USER_AGENT = "GhostFace-webhook/1"


class WebhookError(GhostFaceError):
    """A POST that did not succeed after every attempt."""


def validate_url(url: str) -> str:
    """The URL, stripped, when it is an absolute ``http`` or ``https`` URL with a host.

    Raises:
        ValueError: anything else (another scheme, no host, spaces).
    """
    url = url.strip()
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"webhook URL must start with http:// or https://, not {url!r}")
    if not parts.hostname or any(c.isspace() for c in url):
        raise ValueError(f"webhook URL {url!r} has no valid host")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ValueError(f"webhook URL {url!r} has an invalid port") from exc
    return url


def _secret_like(segment: str) -> bool:
    # Tokens in webhook paths (Slack, Discord, Home Assistant) are long runs of letters and digits.
    return len(segment) >= 16 or (
        len(segment) >= 8 and any(c.isdigit() for c in segment) and any(c.isalpha() for c in segment)
    )


def redact_url(url: str) -> str:
    """The URL as it may appear in a message or a log, with nothing secret in it.

    No user or password, no query values, no fragment, and path segments that look like tokens replaced
    by ``***``.

    ``https://user:pw@hooks.example.com/services/T0123/B0456/abcdefXYZ123456789?token=s3cret`` becomes
    ``https://***@hooks.example.com/services/T0123/B0456/***?token=***``.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid URL>"
    userinfo = "***@" if parts.username or parts.password else ""
    path = "/".join("***" if _secret_like(seg) else seg for seg in parts.path.split("/"))
    query = "&".join(f"{key}=***" for key, _ in urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    return urllib.parse.urlunsplit((parts.scheme, f"{userinfo}{host}{port}", path, query, ""))


class Webhook:
    """POSTs ``event.to_dict()`` as JSON (``Content-Type: application/json``) to ``url``.

    Nothing is sent while ``url`` is empty. A connection error, a timeout or a 5xx/408/429 answer is
    retried ``retries`` times, waiting ``backoff_s``, then twice that, and so on; another 4xx is not
    retried. ``timeout_s`` bounds the whole delivery of one event, retries and waits included (a server
    that answers a byte at a time cannot hold the plugin longer). Messages and logs show the URL
    redacted (:func:`redact_url`): tokens and credentials in it are never repeated. When every attempt fails the plugin gives up on that event, counts it in ``failed`` and
    raises :class:`WebhookError`, so that the Plugins dialog shows the failure (and the bus disables
    the plugin after too many failures in a row).

    Settings:
        url: http(s) URL; empty sends nothing.
        timeout_s: seconds for one event, every attempt and wait included.
        retries: further attempts after the first.
        backoff_s: wait before the first retry; doubled for each next one.
        kinds: comma-separated event kinds to send.
        include_thumbnail: add ``thumbnail_jpeg_base64`` to the JSON.
    """

    NAME = "webhook"
    SETTINGS: dict[str, Any] = {
        "url": Setting("", secret=True, help="http(s) URL to POST each event to; empty sends nothing"),
        "timeout_s": Setting(5.0, min=0.1, max=600.0, help="seconds for one event, retries included"),
        "retries": Setting(2, min=0, max=20, help="further attempts after a failed one"),
        "backoff_s": Setting(0.5, min=0.0, max=60.0, help="wait before the first retry; doubled each time"),
        "kinds": Setting("recognized,unknown,left", help="comma-separated event kinds to send"),
        "include_thumbnail": Setting(False, help="add the face thumbnail as base64 JPEG"),
    }

    def __init__(self) -> None:
        self.url: str | None = None
        self.sent = 0
        self.failed = 0
        self._timeout = 5.0
        self._retries = 2
        self._backoff = 0.5
        self._kinds: frozenset[EventKind] = frozenset(EventKind)
        self._thumbnail = False

    def on_start(self, context: Any) -> None:
        """Read and check the URL, timeouts, retries and event kinds; without a URL nothing is sent.

        Raises:
            ValueError: a bad URL, a timeout that is not positive, or negative retries or backoff.
        """
        s = context.settings
        url = str(s.get("url", "") or "").strip()
        self.url = validate_url(url) if url else None
        timeout, retries, backoff = (
            float(s.get("timeout_s", 5.0)),
            int(s.get("retries", 2)),
            float(s.get("backoff_s", 0.5)),
        )
        if timeout <= 0 or retries < 0 or backoff < 0:
            raise ValueError("webhook timeout_s must be > 0, retries and backoff_s >= 0")
        self._timeout, self._retries, self._backoff = timeout, retries, backoff
        self._kinds = parse_kinds(s.get("kinds", "recognized,unknown,left"))
        self._thumbnail = bool(s.get("include_thumbnail", False))
        if self.url is None:
            log.info("webhook: no URL configured; nothing will be sent")
        else:
            log.info("webhook: sending to %s", redact_url(self.url))

    def on_event(self, event: RecognitionEvent) -> None:
        """POST the event as JSON, retrying with backoff while the timeout allows.

        Raises:
            WebhookError: every attempt failed; a 4xx answer other than 408 and 429 is not retried.
        """
        if self.url is None or event.kind not in self._kinds:
            return
        body = json.dumps(event.to_dict(with_thumbnail=self._thumbnail)).encode("utf-8")
        deadline = time.monotonic() + self._timeout
        shown = redact_url(self.url)
        attempts = 0
        last = ""
        for attempt in range(self._retries + 1):
            if attempt:
                wait = self._backoff * 2 ** (attempt - 1)
                if time.monotonic() + wait >= deadline:
                    last += f"; no time left for another attempt within {self._timeout:g} s"
                    break
                time.sleep(wait)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            attempts += 1
            request = urllib.request.Request(
                self.url,
                data=body,
                method="POST",
                headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
            )
            try:
                # The socket timeout bounds each wait for data; the loop bounds the whole answer.
                with urllib.request.urlopen(request, timeout=remaining) as response:
                    while response.read1(65536):
                        if time.monotonic() > deadline:
                            raise TimeoutError(f"the answer took longer than {self._timeout:g} s")
                self.sent += 1
                return
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code} {exc.reason}"
                if 400 <= exc.code < 500 and exc.code not in (408, 429):
                    attempts = attempt + 1
                    break  # the server refuses this request; sending it again will not help
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                last = (
                    f"{type(reason).__name__}: {reason}" if isinstance(reason, BaseException) else str(reason)
                )
            # An error text can quote the URL (with its token): never repeat it.
            last = last.replace(self.url, shown)
            log.debug(
                "webhook: attempt %d of %d to %s failed: %s", attempt + 1, self._retries + 1, shown, last
            )
        self.failed += 1
        raise WebhookError(f"POST to {shown} failed after {attempts} attempt(s): {last}")
