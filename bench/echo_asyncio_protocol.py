"""Echo server on an asyncio Protocol (data_received writes straight back),
for bench/echo.py.

Usage: echo_asyncio_protocol.py PORT [--uvloop]. Prints "ready" once it listens.
"""

import argparse
import asyncio


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        # No flow control: a ping-pong client never has more than one
        # message in flight, so the write buffer cannot grow.
        self.transport.write(data)


async def main(port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", port, backlog=1024)
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
