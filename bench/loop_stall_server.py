"""The server of `bench/loop_stall.py`: `create_app` of whichever source tree is first on
PYTHONPATH (this branch's, or an exported older commit's, for the "before" figures), with
the wall clock moved by a fixed offset into the benchmark's month, on a loopback port.

Run as a file (`python bench/loop_stall_server.py …`), not as `-m bench.…`: an older tree
has no `bench/loop_stall_server.py`, and this script imports only what every tree has.
Settings come from the environment (`QIYI_…`), as for `qiyi serve`.
"""

from __future__ import annotations

import argparse
import datetime as dt
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.app import create_app
from bot.clock import SystemClock
from bot.settings import Settings


class ShiftedClock:
    """The wall clock, `offset` later: time flows, inside the data set's month."""

    def __init__(self, zone: ZoneInfo, offset: dt.timedelta) -> None:
        self._real = SystemClock(zone)
        self._offset = offset

    @property
    def zone(self) -> ZoneInfo:
        return self._real.zone

    def now(self) -> dt.datetime:
        return self._real.now() + self._offset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--offset-seconds", type=float, required=True)
    args = parser.parse_args()
    settings = Settings()
    clock = ShiftedClock(settings.zone, dt.timedelta(seconds=args.offset_seconds))
    web.run_app(
        create_app(settings, clock),
        host="127.0.0.1",
        port=args.port,
        access_log=None,
        print=None,
    )


if __name__ == "__main__":
    main()
