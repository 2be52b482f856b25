"""A real local WebSocket server speaking Supabase Realtime's channel protocol (Phoenix, vsn 1.0.0) for
job progress broadcasts, to test the Realtime path of kamioi.progress without a Realtime server.

It relays what the database NOTIFYs on `kamioi_job_progress` (every `private.publish_job_progress`
message, which a Realtime server would deliver from `realtime.send`) as `broadcast` messages to the
sockets that joined the topic. Joins need the API key (`apikey` query parameter or the join's
`access_token`); private channels are refused without it. Heartbeats and leaves are answered.

    python -m local_stack.standins.realtime_server --port 54399 --db-url postgresql://...   # key: SUPABASE_SECRET_KEY

Clients use http://HOST:PORT/realtime/v1 (realtime-py appends /websocket).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import parse_qs, urlparse

import psycopg
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from kamioi.progress import PROGRESS_CHANNEL
from kamioi.settings import get_settings


class RealtimeRelay:
    def __init__(self, db_url: str, api_key: str) -> None:
        self.db_url, self.api_key = db_url, api_key
        self.joined: dict[ServerConnection, set[str]] = {}

    async def handle(self, ws: ServerConnection) -> None:
        query = parse_qs(urlparse(ws.request.path if ws.request else "").query)
        socket_key = (query.get("apikey") or [""])[0]
        self.joined[ws] = set()
        try:
            async for raw in ws:
                message = json.loads(raw)
                await self._answer(ws, message, socket_key)
        except ConnectionClosed:
            pass
        finally:
            self.joined.pop(ws, None)

    async def _answer(self, ws: ServerConnection, message: dict[str, Any], socket_key: str) -> None:
        topic, event, payload = message.get("topic", ""), message.get("event"), message.get("payload") or {}
        reply: dict[str, Any] = {"status": "ok", "response": {}}
        if event == "phx_join":
            config = payload.get("config") or {}
            if config.get("private") and self.api_key not in (socket_key, payload.get("access_token")):
                reply = {"status": "error", "response": {"reason": "Unauthorized: this channel is private"}}
            else:
                self.joined[ws].add(topic)
                reply = {"status": "ok", "response": {"postgres_changes": []}}
        elif event == "phx_leave":
            self.joined[ws].discard(topic)
        elif event != "heartbeat":
            return  # access_token refreshes, client broadcasts: nothing to answer
        refs = {"ref": message.get("ref"), "join_ref": message.get("join_ref")}
        await ws.send(json.dumps({"topic": topic, "event": "phx_reply", "payload": reply, **refs}))

    async def relay(self) -> None:
        async with await psycopg.AsyncConnection.connect(self.db_url, autocommit=True) as conn:
            await conn.execute(f"listen {PROGRESS_CHANNEL}")
            async for note in conn.notifies():
                message = json.loads(note.payload)
                topic = f"realtime:{message['topic']}"
                inner = {"type": "broadcast", "event": message["event"], "payload": message["payload"]}
                broadcast = json.dumps({"topic": topic, "event": "broadcast", "ref": None, "payload": inner})
                for ws, topics in list(self.joined.items()):
                    if topic in topics:
                        with suppress(ConnectionClosed):
                            await ws.send(broadcast)


async def _serve(
    relay: RealtimeRelay, host: str, port: int, started: asyncio.Future[Server], stop: asyncio.Event
) -> None:
    async with serve(relay.handle, host, port) as server:
        relay_task = asyncio.create_task(relay.relay())
        started.set_result(server)
        await stop.wait()
        relay_task.cancel()
        await asyncio.gather(relay_task, return_exceptions=True)


@contextmanager
def serve_in_thread(db_url: str, api_key: str, *, host: str = "127.0.0.1") -> Iterator[str]:
    """Run the server on a background thread; yields the Realtime URL (http://host:port/realtime/v1)."""
    loop = asyncio.new_event_loop()
    started: asyncio.Future[Server] = loop.create_future()
    stop = asyncio.Event()
    task = loop.create_task(_serve(RealtimeRelay(db_url, api_key), host, 0, started, stop))
    thread = threading.Thread(target=loop.run_until_complete, args=(task,), daemon=True)
    thread.start()
    server = asyncio.run_coroutine_threadsafe(asyncio.wait_for(asyncio.shield(started), 10), loop).result(11)
    try:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"http://{host}:{port}/realtime/v1"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(5)
        loop.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db-url", default=None, help="default: DATABASE_URL")
    args = parser.parse_args(argv)
    settings = get_settings()
    relay = RealtimeRelay(args.db_url or settings.db_url, settings.supabase_secret_key)
    print(f"local Realtime (job progress) on http://{args.host}:{args.port}/realtime/v1", flush=True)

    async def forever() -> None:
        await _serve(relay, args.host, args.port, asyncio.get_running_loop().create_future(), asyncio.Event())

    asyncio.run(forever())


if __name__ == "__main__":
    main()
