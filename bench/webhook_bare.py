"""Case (a) of bench/webhook.py: the ceiling — a bare aiohttp handler on `POST /wechat` that
reads the body and returns a constant XML text reply. No signature check, no parsing, no
database, no access log: what aiohttp alone serves on this machine, in one process.

    .venv/bin/python -m bench.webhook_bare --port PORT
"""

from __future__ import annotations

import argparse

from aiohttp import web

REPLY = (
    "<xml><ToUserName><![CDATA[o_bench]]></ToUserName>"
    "<FromUserName><![CDATA[gh_qiyi_demo]]></FromUserName>"
    "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>"
    "<Content><![CDATA[收到]]></Content></xml>"
)


async def receive(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(text=REPLY, content_type="application/xml")


def app() -> web.Application:
    application = web.Application()
    application.router.add_post("/wechat", receive)
    return application


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.webhook_bare")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    web.run_app(app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
