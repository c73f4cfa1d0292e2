"""Echo server on asyncio streams (start_server, read/write/drain), for
bench/echo.py.

Usage: echo_asyncio_streams.py PORT [--uvloop]. Prints "ready" once it listens.
"""

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # run with -P
from _asyncio_server import serve  # noqa: E402


async def handle(reader, writer):
    while True:
        data = await reader.read(65536)
        if not data:
            break
        writer.write(data)
        await writer.drain()
    writer.close()


async def start(port):
    return await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)


serve(start)
