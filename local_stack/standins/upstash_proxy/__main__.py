"""``python -m local_stack.standins.upstash_proxy --port 54380 --redis-url redis://:PW@127.0.0.1:54379/0 --token T``.

The redis URL (it carries redis-server's password) and the token default to $REDIS_URL and
$UPSTASH_REDIS_REST_TOKEN, so a caller can keep both off the command line.
"""

import argparse
import os
from collections.abc import Sequence

import uvicorn

from local_stack.standins.upstash_proxy.app import create_app
from local_stack.standins.upstash_proxy.config import ProxyConfig


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local_stack.standins.upstash_proxy", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=54380)
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL") or "redis://127.0.0.1:54379/0",
        help="redis-server to front, with its password (default: $REDIS_URL)",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("UPSTASH_PROXY_TOKEN") or os.environ.get("UPSTASH_REDIS_REST_TOKEN"),
        help="bearer token clients must send (default: $UPSTASH_PROXY_TOKEN, $UPSTASH_REDIS_REST_TOKEN)",
    )
    parser.add_argument("--max-connections", type=int, default=ProxyConfig.max_connections)
    parser.add_argument("--sync-wait-timeout", type=float, default=ProxyConfig.sync_wait_timeout)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("a token is required: --token or $UPSTASH_PROXY_TOKEN")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    config = ProxyConfig(
        redis_url=args.redis_url,
        token=args.token,
        max_connections=args.max_connections,
        sync_wait_timeout=args.sync_wait_timeout,
    )
    app = create_app(config)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)


if __name__ == "__main__":
    main()
