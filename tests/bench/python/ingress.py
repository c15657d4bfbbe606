"""A plain Python ingress, the baseline of the benchmarks: aiohttp receives the event, checks
the token, reads the ids it needs, publishes it durably to JetStream (de-duplicated by
requestId) and answers 202. Same wire contract as the Rust ingress, none of its hardening."""

import json
import os

import nats
from aiohttp import web

TOKEN = f"Bearer {os.environ['SALTEDCX_TOKEN'].split(',')[0]}"
PARTITIONS = int(os.environ.get("PARTITIONS", "64"))
STREAM = "PYBASELINE_EVENTS"


def partition(conversation: str) -> int:
    """FNV-1a 64 of the conversation id modulo the partitions, as the Rust pipeline does."""
    h = 0xCBF29CE484222325
    for byte in conversation.encode():
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h % PARTITIONS


async def post_event(request: web.Request) -> web.Response:
    if request.headers.get("Authorization") != TOKEN:
        return web.json_response({"error": {"code": "unauthorized"}}, status=401)
    body = await request.read()
    try:
        event = json.loads(body)
        request_id = event["requestId"]
        conversation = (event.get("conversation") or {}).get("pid") or event["trigger"][
            "conversationPid"
        ]
    except (ValueError, KeyError, TypeError):
        return web.json_response({"error": {"code": "invalid_event"}}, status=422)
    js = request.app["js"]
    ack = await js.publish(
        f"pybaseline.events.{partition(conversation)}",
        body,
        headers={"Nats-Msg-Id": request_id},
    )
    status = "duplicate" if ack.duplicate else "accepted"
    return web.json_response({"requestId": request_id, "status": status}, status=202)


async def connect(app: web.Application) -> None:
    app["nc"] = await nats.connect(os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    app["js"] = app["nc"].jetstream()
    await app["js"].add_stream(name=STREAM, subjects=["pybaseline.events.*"])


async def close(app: web.Application) -> None:
    await app["nc"].drain()


def main() -> None:
    app = web.Application()
    app.router.add_post("/v1/events", post_event)
    app.on_startup.append(connect)
    app.on_cleanup.append(close)
    host, port = os.environ.get("INGRESS_ADDR", "127.0.0.1:8080").rsplit(":", 1)
    web.run_app(app, host=host, port=int(port), access_log=None, print=None)


if __name__ == "__main__":
    main()
