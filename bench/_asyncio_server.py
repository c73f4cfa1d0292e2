"""What the asyncio echo servers share: PORT [--uvloop] on the command line,
then `start(port)` (a coroutine returning an asyncio Server) on asyncio's or
uvloop's loop, "ready" once it listens."""
import argparse
import asyncio


def serve(start):
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop's event loop")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    async def main():
        server = await start(args.port)
        print("ready", flush=True)
        await server.serve_forever()

    asyncio.run(main())
