"""Example requests and answers of the OpenAPI document (shown on /docs).

Keyed by (METHOD, path) as the operations are: ``"request"`` is the body sent,
a status its answer's body, ``"Location"`` the header of its 201.
tests/unit/test_openapi_document.py validates every example against its schema
and every request example with the model the hub itself checks bodies with;
tests/integration/test_openapi_client.py sends them to a running hub.
"""

from __future__ import annotations

from typing import Any

SUB, PUB = "ACME", "UNIV"
EVENT_ID = f"E:{PUB}-5b0e6a52-1c3f-4b8e-9a51-2f0d7c9e4a10"
USER_ID = "u_3f5c0e8a9b7d4c21a6e0f1b2c3d4e5f6"
SYNC_ID = f"S:{SUB}-0f7e2d9c-4b1a-4e3f-8a6d-5c2b1e0f9d8c"
NOW = "2026-11-22T08:00:00.000Z"

PARAMETERS: dict[str, str] = {
    "programId": SUB,
    "publisherProgramId": PUB,
    "eventId": EVENT_ID,
    "userId": USER_ID,
    "name": "app.js",
}
"""An example value of each path parameter, by name."""

_PROGRAM = "/api/programs/{programId}"
_SUBS = f"{_PROGRAM}/eventSubs"
_SUB = _SUBS + "/{publisherProgramId}"

_EVENT_IN = {
    "PublisherProgramId": PUB,
    "PublisherSystemId": "lms",
    "PublisherEventId": "course-done-4711",
    "EventType": "COURSE_DONE",
    "PublisherParticipantId": "p-1024",
    "PublisherEventCategory": {"value": "COURSE", "label": "Course"},
    "PublisherEventData": {"email": "ada@example.org", "score": 92},
    "EventStartUtc": "2026-11-20T10:00:00Z",
}
_EVENT_OUT = {
    **_EVENT_IN,
    "EventId": EVENT_ID,
    "EventStartUtc": "2026-11-20T10:00:00.000Z",
    "EventEndUtc": None,
    "CreatedUtc": "2026-11-21T17:42:05.123Z",
}
_TEMPLATE = {
    "COURSE": {
        "action": "import",
        "importProcessId": 12,
        "batchRowTemplate": '{"Email": "{{email}}", "Score": {{json score}}}',
    },
    "_default": {"action": "ignore"},
}
_SUBSCRIPTION = {
    "ProgramId": SUB,
    "PublisherProgramId": PUB,
    "CreatedUtc": "2026-11-01T09:00:00.000Z",
    "UpdatedUtc": "2026-11-21T09:00:00.000Z",
    "LastSyncUtc": "2026-11-21T02:00:00.000Z",
    "SyncEnabled": True,
    "LbApiPayloadTemplate": _TEMPLATE,
    "ImportProcessId": None,
    "OnRenderError": "stop",
}
_PROGRAM_OUT = {
    "ProgramId": SUB,
    "Name": "Acme Nursing Board",
    "LbBaseUrl": "https://acme.learningbuilder.example.com",
    "LbApiKeySet": True,
    "CreationPath": "LH",
    "SendSuccessEmailTo": None,
    "SendFailureEmailTo": "ops@acme.example.com",
    "CreatedUtc": "2026-11-01T08:00:00.000Z",
    "UpdatedUtc": "2026-11-01T08:00:00.000Z",
}
_BATCH = {
    "ImportProcessId": 12,
    "Rows": 2,
    "BatchId": "88121",
    "BatchUrl": "https://acme.learningbuilder.example.com/batches/88121",
}
_SYNCED = {
    "PublisherProgramId": PUB,
    "Status": "ok",
    "Events": 3,
    "Imported": 2,
    "Ignored": 1,
    "Batches": [_BATCH],
    "Resent": 0,
    "Parked": [],
    "Redelivered": 0,
    "LastSyncUtc": "2026-11-22T08:00:00.000Z",
    "Error": None,
}
_SYNC = {"ProgramId": SUB, "SyncId": SYNC_ID, "StartedUtc": NOW, "FinishedUtc": "2026-11-22T08:00:01.250Z"}
_LB_REFUSED = "LB answered 401: invalid api key"
_RENDER_ERROR = f"{EVENT_ID}: row is not JSON: Expecting ',' delimiter (line 1, column 31)"


def _failed(error: str, detail: dict[str, Any], message: str) -> dict[str, Any]:
    return {
        **_SYNC,
        "Subscriptions": [{**_SYNCED, "Status": "failed", "Imported": 0, "Batches": [], "LastSyncUtc": None, "Error": detail["Message"]}],
        "error": error,
        "message": message,
        "details": {"Subscriptions": [{"PublisherProgramId": PUB, "Error": error, **detail}]},
    }


def _problem(error: str, message: str, **details: Any) -> dict[str, Any]:
    return {"error": error, "message": message, "details": details}


EXAMPLES: dict[tuple[str, str], dict[Any, Any]] = {
    ("GET", "/healthz"): {200: {"status": "alive"}},
    ("GET", "/readyz"): {
        200: {
            "status": "ready",
            "checks": {
                "broker": {"ok": True, "ms": 3.1},
                "database": {"ok": True, "ms": 1.2},
                "workers": {"ok": True, "ms": 8.4, "worker": "worker-1"},
            },
        },
        503: _problem(
            "not_ready",
            "Not ready: workers did not answer.",
            checks={"broker": {"ok": True, "ms": 3.0}, "database": {"ok": True, "ms": 1.0}, "workers": {"ok": False, "reason": "RpcTimeout: no answer"}},
        ),
    },
    ("GET", "/api/programs"): {200: [_PROGRAM_OUT]},
    ("PUT", _PROGRAM): {
        "Location": f"/api/programs/{SUB}",
        "request": {
            "Name": "Acme Nursing Board",
            "LbBaseUrl": "https://acme.learningbuilder.example.com",
            "LbApiKey": "lb-secret-key",
            "CreationPath": "LH",
            "SendFailureEmailTo": "ops@acme.example.com",
        },
    },
    ("GET", _PROGRAM): {200: _PROGRAM_OUT, 404: _problem("unknown_program", f"Program {SUB!r} is not registered.", ProgramId=SUB)},
    ("DELETE", _PROGRAM): {
        409: _problem(
            "program_in_use",
            f"Program {SUB!r} is referenced by 1 subscription(s) ({SUB}->{PUB}); delete them first.",
            ProgramId=SUB,
            Subscriptions=[f"{SUB}->{PUB}"],
        ),
    },
    ("POST", "/api/keys"): {
        "Location": f"/api/keys/{USER_ID}",
        "request": {"Programs": {PUB: "write", SUB: "read"}},
        201: {"UserId": USER_ID, "ApiKey": "hk_6Jm0yV2r9QkXb1sTzL4aPq8wEoNc3uHd"},
    },
    ("GET", "/api/keys"): {
        200: [{"UserId": USER_ID, "System": False, "Programs": {PUB: "write", SUB: "read"}, "CreatedUtc": NOW, "RevokedUtc": None}],
    },
    ("GET", "/api/keys/{userId}"): {
        200: {"UserId": USER_ID, "System": False, "Programs": {PUB: "write", SUB: "read"}, "CreatedUtc": NOW, "RevokedUtc": None},
    },
    ("POST", "/api/events"): {"Location": f"/api/events/{EVENT_ID}", "request": _EVENT_IN, 201: {"EventId": EVENT_ID}, 200: {"EventId": EVENT_ID}},
    ("GET", "/api/events/{programId}"): {200: {"Events": [_EVENT_OUT], "NextPageToken": None}},
    ("DELETE", "/api/events/{eventId}"): {
        404: _problem("event_not_found", f"There is no event {EVENT_ID!r} (unknown, or deleted).", EventId=EVENT_ID),
    },
    ("GET", _SUBS): {200: [_SUBSCRIPTION]},
    ("POST", _SUBS): {
        "Location": f"/api/programs/{SUB}/eventSubs/{PUB}",
        "request": {"PublisherProgramId": PUB, "SyncEnabled": True, "LbApiPayloadTemplate": _TEMPLATE, "OnRenderError": "stop"},
        409: _problem(
            "subscription_exists",
            f"Program {SUB!r} already subscribes to {PUB!r}; PATCH it instead.",
            ProgramId=SUB,
            PublisherProgramId=PUB,
        ),
    },
    ("GET", _SUB): {200: _SUBSCRIPTION},
    ("PATCH", _SUB): {"request": {"SyncEnabled": False}},
    ("POST", f"{_SUB}/preview"): {
        "request": {"Latest": 2},
        200: {
            "Results": [
                {
                    "EventId": EVENT_ID,
                    "PublisherEventId": "course-done-4711",
                    "Category": "COURSE",
                    "EntryKey": "COURSE",
                    "Action": "import",
                    "ImportProcessId": 12,
                    "Row": {"Email": "ada@example.org", "Score": 92},
                    "Error": None,
                },
                {
                    "EventId": f"E:{PUB}-9d1c2b3a-4e5f-4a6b-8c7d-0e1f2a3b4c5d",
                    "PublisherEventId": "login-88",
                    "Category": None,
                    "EntryKey": "_default",
                    "Action": "ignore",
                    "ImportProcessId": None,
                    "Row": None,
                    "Error": None,
                },
            ],
            "Summary": {"Import": 1, "Ignore": 1, "Failed": 0},
        },
    },
    ("GET", f"{_SUB}/parked"): {
        200: {
            "Parked": [
                {
                    "EventId": EVENT_ID,
                    "Offset": 41,
                    "EntryKey": "COURSE",
                    "Reason": "render_error: PublisherEventData.score is missing",
                    "ParkedUtc": NOW,
                    "Redeliver": False,
                }
            ],
            "NextPageToken": None,
            "Total": 1,
        },
    },
    ("POST", f"{_SUB}/parked/redeliver"): {"request": {"EventIds": [EVENT_ID]}, 200: {"Queued": [EVENT_ID], "NotParked": []}},
    ("POST", "/api/processEvents"): {
        200: {**_SYNC, "Subscriptions": [_SYNCED]},
        422: _failed(
            "render_failed",
            {"Message": _RENDER_ERROR, "EventIds": [EVENT_ID]},
            f"A template failed on 1 event(s) of {PUB}: {_RENDER_ERROR}",
        ),
        502: _failed(
            "lb_rejected",
            {"Message": _LB_REFUSED, "LbStatus": 401},
            f"LearningBuilder refused or failed a batch of {PUB}: {_LB_REFUSED}",
        ),
    },
    ("GET", f"{_PROGRAM}/syncs"): {
        200: {
            "ProgramId": SUB,
            "Syncs": [
                {
                    "SyncId": SYNC_ID,
                    "StartedUtc": NOW,
                    "FinishedUtc": "2026-11-22T08:00:01.250Z",
                    "Status": "ok",
                    "HttpStatus": 200,
                    "Resumed": 0,
                    "Subscriptions": [_SYNCED],
                    "Batches": [
                        {
                            "PublisherProgramId": PUB,
                            "ImportProcessId": 12,
                            "Rows": 2,
                            "Seq": 1,
                            "Status": "accepted",
                            "LbStatus": 200,
                            "LbMessage": None,
                            "BatchId": "88121",
                            "BatchUrl": "https://acme.learningbuilder.example.com/batches/88121",
                            "FileName": f"Learning Hub {PUB} 2026-11-22 {SYNC_ID}-1",
                            "FirstOffset": 39,
                            "LastOffset": 41,
                            "CreatedUtc": NOW,
                        }
                    ],
                }
            ],
        },
    },
}
