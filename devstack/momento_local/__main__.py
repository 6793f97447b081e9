"""Run the local Momento server in the foreground: ``python -m devstack.momento_local --port 9090``.

Once it is serving, one line ``MOMENTO_LOCAL_PORT=<port>`` goes to stdout (the useful part with
``--port 0``, which picks a free port). SIGINT or SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from devstack.momento_local.server import MomentoLocalServer

logger = logging.getLogger("devstack.momento_local")

DEFAULT_PORT = 8080  # the SDK's CredentialProvider.for_momento_local() default


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.momento_local", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"0 picks a free port (default {DEFAULT_PORT})",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logger.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    server = MomentoLocalServer(args.host, args.port)
    port = server.start()
    logger.info("Momento local server ready on %s:%d", args.host, port)
    sys.stdout.write(f"MOMENTO_LOCAL_PORT={port}\n")
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):  # a timed wait keeps the main thread responsive to signals
            pass
    finally:
        server.stop(grace=1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
