"""What every outbound platform call answers, in one shape."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp


class TransientError(Exception):
    """The platform did not answer usefully (network, timeout, HTTP 5xx): try again later."""


@dataclass(frozen=True)
class Answer:
    errcode: int  # 0: done (WeChat's errcode, OneBot's retcode)
    errmsg: str

    @property
    def ok(self) -> bool:
        return self.errcode == 0


async def post_json(http: aiohttp.ClientSession, url: str, **kwargs: Any) -> dict[str, Any]:
    """The platform's JSON object for a POST; `TransientError` for what a retry may cure."""
    return await request_json(http, "POST", url, **kwargs)


async def request_json(
    http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> dict[str, Any]:
    """The platform's JSON object; `TransientError` for a network error, a timeout, an
    HTTP 5xx or an answer that is not a JSON object (a gateway's page)."""
    try:
        async with http.request(method, url, **kwargs) as response:
            if response.status >= 500:
                raise TransientError(f"HTTP {response.status}")
            response.raise_for_status()
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise TransientError(f"{type(exc).__name__}: {exc}") from None
    except ValueError as exc:  # a proxy's or gateway's page instead of the API's JSON
        raise TransientError(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise TransientError(f"not a JSON object: {str(body)[:100]}")
    return body


def json_body(payload: dict[str, Any]) -> dict[str, Any]:
    # Chinese goes unescaped: the platform shows \\u escapes literally in some places.
    return {
        "data": json.dumps(payload, ensure_ascii=False).encode("utf-8"),
        "headers": {"Content-Type": "application/json; charset=utf-8"},
    }
