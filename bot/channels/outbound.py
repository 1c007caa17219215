"""What every outbound platform call answers, in one shape."""

from __future__ import annotations

from dataclasses import dataclass


class TransientError(Exception):
    """The platform did not answer usefully (network, timeout, HTTP 5xx): try again later."""


@dataclass(frozen=True)
class Answer:
    errcode: int  # 0: done (WeChat's errcode, OneBot's retcode)
    errmsg: str

    @property
    def ok(self) -> bool:
        return self.errcode == 0
