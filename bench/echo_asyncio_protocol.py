"""Echo server on an asyncio Protocol (data_received writes straight back),
for bench/echo.py.

Usage: echo_asyncio_protocol.py PORT [--uvloop]. Prints "ready" once it listens.
"""

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # run with -P
from _asyncio_server import serve  # noqa: E402


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        # No flow control: a ping-pong client never has more than one
        # message in flight, so the write buffer cannot grow.
        self.transport.write(data)


async def start(port):
    return await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", port, backlog=1024)


serve(start)
