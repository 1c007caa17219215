"""Case (a′) of bench/webhook.py: the floor under any WeChat bot on this stack — aiohttp,
the signature checked and the message parsed and answered with wechatpy (the library the
product uses for the protocol), and one durable SQLite write (the MsgId kept, as a retry
dedupe needs; WAL, synchronous=NORMAL, like the product's) per message. No member lookup,
no command, no template: what (a) costs once a handler must read the message and write.

    .venv/bin/python -m bench.webhook_floor --db FILE --port PORT --token TOKEN
"""

from __future__ import annotations

import argparse
import sqlite3

from aiohttp import web
from wechatpy import parse_message
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature


def app(db_path: str, token: str) -> web.Application:
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE IF NOT EXISTS message (msg_id TEXT PRIMARY KEY, openid TEXT)")

    async def receive(request: web.Request) -> web.Response:
        query = request.query
        try:
            check_signature(token, query["signature"], query["timestamp"], query["nonce"])
        except (KeyError, InvalidSignatureException):
            return web.Response(status=403)
        message = parse_message(await request.read())
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT OR IGNORE INTO message VALUES (?, ?)", (str(message.id), message.source))
        db.execute("COMMIT")
        reply = TextReply(source=message.target, target=message.source, content="收到")
        return web.Response(text=reply.render(), content_type="application/xml")

    application = web.Application()
    application.router.add_post("/wechat", receive)
    return application


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.webhook_floor")
    parser.add_argument("--db", required=True, help="the sqlite3 file (created)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--token", required=True)
    args = parser.parse_args(argv)
    web.run_app(app(args.db, args.token), host=args.host, port=args.port, access_log=None)


if __name__ == "__main__":
    main()
