"""The LearningBuilder CreateBatch client: one ClientSession per process.

``POST {LbBaseUrl}/API/WorkflowImportQueue/CreateBatch?fileName=&importProcessId=&creationPath=
[&sendSuccessEmailTo=&sendFailureEmailTo=]`` with ``Authorization: apikey KEY`` and a
JSON Lines body. Any 2xx is success. Connection errors, timeouts, 429 and
502/503/504 are retried with exponential backoff a bounded number of times;
other 4xx and 5xx are not. The API key is never logged and never put in an
error message.

A retry after a timeout may send rows LB had queued already: LB has no
idempotency key, and the contract prefers a possible duplicate to a lost
row (docs/sync.md). Such an attempt is counted, never hidden: an attempt
that ended without an answer after the request may have gone out (a
timeout, the connection dropped) is ``unanswered``, and a batch sent again
after one is ``resent``. A connection that was never made (refused,
connect timeout) sent nothing and counts as neither.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import aiohttp

from hub_stream.platform import metrics
from hub_stream.platform.settings import HubSettings

logger = logging.getLogger(__name__)

CREATE_BATCH_PATH = "/API/WorkflowImportQueue/CreateBatch"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
BATCH_ID_FIELDS = ("workflow_import_queue_batch_id", "queuebatchid", "batchid")
BACKOFF_BASE_S = 0.2
BACKOFF_MAX_S = 5.0
MESSAGE_MAX = 500


@dataclass(frozen=True)
class LbTarget:
    """Where and how to call one subscriber's LB."""

    base_url: str
    api_key: str
    creation_path: str = "LH"
    success_email: str | None = None
    failure_email: str | None = None

    def __repr__(self) -> str:  # never show the key
        return f"LbTarget(base_url={self.base_url!r}, creation_path={self.creation_path!r})"


@dataclass(frozen=True)
class BatchOutcome:
    """What LB answered to one CreateBatch call (after retries)."""

    ok: bool
    status: int | None  # None: no HTTP answer at all (connection error, timeout)
    message: str
    batch_id: str | None = None
    batch_url: str | None = None
    attempts: int = 1
    unanswered: int = 0  # attempts that may have reached LB but got no answer
    resent: bool = False  # an attempt followed an unanswered one: LB may hold the rows twice


class CreateBatchClient:
    """Posts batches of rows to LB, retrying what is worth retrying."""

    def __init__(self, settings: HubSettings, *, session: aiohttp.ClientSession | None = None) -> None:
        self._settings = settings
        self._session = session
        self._own_session = session is None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            s = self._settings
            timeout = aiohttp.ClientTimeout(total=s.lb_total_timeout_s, sock_connect=s.lb_connect_timeout_s)
            self._session = aiohttp.ClientSession(timeout=timeout, raise_for_status=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None and self._own_session:
            await self._session.close()
        self._session = None

    async def create_batch(
        self,
        target: LbTarget,
        *,
        file_name: str,
        import_process_id: int,
        rows: Sequence[str],
    ) -> BatchOutcome:
        """Send ``rows`` (compact JSON objects, one a line) as one batch."""
        params = {
            "fileName": file_name,
            "importProcessId": str(import_process_id),
            "creationPath": target.creation_path,
        }
        if target.success_email:
            params["sendSuccessEmailTo"] = target.success_email
        if target.failure_email:
            params["sendFailureEmailTo"] = target.failure_email
        url = target.base_url.rstrip("/") + CREATE_BATCH_PATH
        body = ("\n".join(rows) + "\n").encode()
        headers = {"Authorization": f"apikey {target.api_key}", "Content-Type": "application/x-ndjson"}
        attempts = unanswered = 0
        resent = False
        clock = time.perf_counter()
        while True:
            attempts += 1
            resent = resent or unanswered > 0
            outcome, retry_after, maybe_sent = await self._attempt(url, params, body, headers)
            unanswered += maybe_sent
            outcome = BatchOutcome(**{**outcome.__dict__, "attempts": attempts, "unanswered": unanswered, "resent": resent})
            metrics.LB_RESPONSES.labels(str(outcome.status) if outcome.status is not None else "none").inc()
            retryable = outcome.status is None or outcome.status in RETRY_STATUSES
            if outcome.ok or not retryable or attempts > self._settings.lb_max_retries:
                metrics.LB_LATENCY.observe(time.perf_counter() - clock)
                return outcome
            delay = retry_after if retry_after is not None else self._backoff(attempts)
            logger.warning(
                "CreateBatch to %s answered %s (%s); retry %d of %d in %.1f s",
                target.base_url,
                outcome.status if outcome.status is not None else "no answer",
                outcome.message,
                attempts,
                self._settings.lb_max_retries,
                delay,
            )
            await asyncio.sleep(delay)

    @staticmethod
    def _backoff(attempt: int) -> float:
        return min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)

    async def _attempt(
        self, url: str, params: dict[str, str], body: bytes, headers: dict[str, str]
    ) -> tuple[BatchOutcome, float | None, bool]:
        """One POST: (outcome, Retry-After, whether it may have reached LB without an answer)."""
        try:
            async with self._ensure_session().post(url, params=params, data=body, headers=headers) as resp:
                text = await resp.text(errors="replace")
                retry_after = _retry_after(resp.headers.get("Retry-After"))
                if 200 <= resp.status < 300:
                    batch_id, batch_url = _batch_reference(text)
                    return BatchOutcome(True, resp.status, "accepted", batch_id, batch_url), None, False
                return BatchOutcome(False, resp.status, _message(text, resp.reason)), retry_after, False
        except aiohttp.ConnectionTimeoutError:  # no connection was made: nothing was sent
            return BatchOutcome(False, None, "LB could not be reached within the connect timeout."), None, False
        except TimeoutError:
            return BatchOutcome(False, None, "LB did not answer within the timeout."), None, True
        except aiohttp.ClientConnectorError as exc:  # refused, unknown host: nothing was sent
            return BatchOutcome(False, None, f"Could not reach LB: {type(exc).__name__}: {exc}"[:MESSAGE_MAX]), None, False
        except aiohttp.ClientError as exc:  # the connection dropped: the body may have gone out
            message = f"LB dropped the connection without an answer: {type(exc).__name__}: {exc}"
            return BatchOutcome(False, None, message[:MESSAGE_MAX]), None, True


def _retry_after(value: str | None) -> float | None:
    try:
        return min(BACKOFF_MAX_S, max(0.0, float(value))) if value else None
    except ValueError:
        return None


def _message(text: str, reason: str | None) -> str:
    """LB's own words for a failure: a JSON message field if there is one, else the text."""
    import json

    try:
        doc: Any = json.loads(text)
        if isinstance(doc, dict):
            for key, value in doc.items():
                if key.lower() in ("message", "error", "detail", "title") and isinstance(value, str):
                    return value[:MESSAGE_MAX]
    except ValueError:
        pass
    return (text.strip() or reason or "no message")[:MESSAGE_MAX]


def _batch_reference(text: str) -> tuple[str | None, str | None]:
    """The batch id (any of the known field names, any case) and link from an answer."""
    import json

    try:
        doc: Any = json.loads(text)
    except ValueError:
        return None, None
    if not isinstance(doc, dict):
        return None, None
    lowered = {str(k).lower(): v for k, v in doc.items()}
    batch_id = next((str(lowered[f]) for f in BATCH_ID_FIELDS if lowered.get(f) is not None), None)
    link = lowered.get("queuebatchdetails")
    return batch_id, str(link) if link else None
