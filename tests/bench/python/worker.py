"""A plain Python worker, the baseline of the benchmarks: one durable pull consumer shared by the
worker processes, events processed concurrently (at most IN_FLIGHT at once), each answered with
one message through an aiohttp client session (the Salted CX callback), then acknowledged. No
ordering across crashes, no deadlines, no retries: the least a working implementation does."""

import asyncio
import json
import os

import aiohttp
import nats

TOKEN = os.environ["SALTEDCX_TOKEN"].split(",")[0]
API = os.environ.get("SALTEDCX_API_URL", "http://127.0.0.1:8088").rstrip("/")
STREAM = "PYBASELINE_EVENTS"
IN_FLIGHT = 512


async def answer(session: aiohttp.ClientSession, message) -> None:
    event = json.loads(message.data)
    conversation = (event.get("conversation") or {}).get("pid") or event["trigger"][
        "conversationPid"
    ]
    text = event["trigger"].get("content") or ""
    body = {
        "requestId": event["requestId"],
        "actions": [{"type": "MESSAGE", "content": f"You said: {text}"[:200]}] if text else [],
    }
    url = f"{API}/api/v1/live/your-logic/accounts/{event['accountId']}/conversations/{conversation}"
    async with session.post(url, json=body, headers={"Authorization": f"Bearer {TOKEN}"}) as r:
        await r.read()
    await message.ack()


async def main() -> None:
    nc = await nats.connect(os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    js = nc.jetstream()
    await js.add_stream(name=STREAM, subjects=["pybaseline.events.*"])
    subscription = await js.pull_subscribe("pybaseline.events.*", durable="pybaseline-workers")
    slots = asyncio.Semaphore(IN_FLIGHT)
    tasks = set()

    async def handle(session: aiohttp.ClientSession, message) -> None:
        try:
            await answer(session, message)
        finally:
            slots.release()

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        while True:
            try:
                batch = await subscription.fetch(64, timeout=1)
            except nats.errors.TimeoutError:
                continue
            for message in batch:
                await slots.acquire()
                task = asyncio.create_task(handle(session, message))
                tasks.add(task)
                task.add_done_callback(tasks.discard)


if __name__ == "__main__":
    asyncio.run(main())
