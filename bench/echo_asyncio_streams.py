"""Echo server on asyncio streams (start_server, read/write/drain), for
bench/echo.py.

Usage: echo_asyncio_streams.py PORT [--uvloop]. Prints "ready" once it listens.
"""

import argparse
import asyncio


async def handle(reader, writer):
    while True:
        data = await reader.read(65536)
        if not data:
            break
        writer.write(data)
        await writer.drain()
    writer.close()


async def main(port):
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    print("ready", flush=True)
    await server.serve_forever()


parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("--uvloop", action="store_true", help="run on uvloop's event loop")
args = parser.parse_args()
if args.uvloop:
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
asyncio.run(main(args.port))
