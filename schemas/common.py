"""Shapes every area shares: the problem answer and small answers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class Problem(BaseModel):
    """Every 4xx/5xx answer."""

    error: str
    message: str
    details: dict[str, Any]


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, Any]
