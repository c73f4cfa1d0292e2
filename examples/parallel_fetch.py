"""Parallel fetch: unmodified urllib code, one tasklet per URL.

After patch.patch_all(), the standard library's sockets, name resolution,
TLS and time.sleep park only the calling tasklet, so plain
urllib.request.urlopen() calls in several tasklets download concurrently:
the total time is about that of the slowest URL, not the sum.

    python parallel_fetch.py URL...      # e.g. https://www.python.org/ https://pypi.org/
    python parallel_fetch.py --self-test # fetch 5 pages from an HTTPS server in this
                                         # very process, each slow to serve, and exit

The self-test's certificate comes from trustme (pip install trustme); without
it the self-test serves plain HTTP.
"""
import http.server
import ssl
import sys
import time
import urllib.request

import syncless

stackless = syncless.install_stackless()

from syncless import coio, patch  # noqa: E402  (after install_stackless)

PAGES = 5
DELAY = 0.5  # seconds the self-test server takes per page


def fetch(url, context, bodies, done):
    start = time.monotonic()
    try:
        with urllib.request.urlopen(url, context=context, timeout=30) as response:
            bodies[url] = response.read()
        print("%d %s (%d bytes) after %.2f s" %
              (response.status, url, len(bodies[url]), time.monotonic() - start))
    except Exception as exc:  # print it: raised after done.send(), main might never see it
        print("failed %s: %r" % (url, exc))
    finally:
        done.send(url)


def fetch_all(urls, context=None):
    """{url: body} for the URLs that could be fetched, all fetched at once."""
    bodies = {}
    done = stackless.channel()
    for url in urls:
        stackless.tasklet(fetch)(url, context, bodies, done)
    for _ in urls:
        done.receive()
    return bodies


class SlowPage(http.server.BaseHTTPRequestHandler):
    """A plain stdlib request handler: after patch_all() its time.sleep()
    (a slow page) parks only this connection's tasklet."""

    def do_GET(self):
        time.sleep(DELAY)
        body = b"this is %s\n" % self.path.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass  # keep the output to what the fetchers print


def serve(listener, context):
    def handle(conn, address):
        try:
            if context is not None:
                # The handshake happens here, in the connection's own tasklet.
                conn = context.wrap_socket(conn, server_side=True)
            SlowPage(conn, address, None)  # serves the request as it is made
        except OSError:
            pass  # a client that went away; uncaught it would reach main
        finally:
            conn.close()

    while True:
        stackless.tasklet(handle)(*listener.accept())


def tls_contexts():
    """(server, client) contexts for 127.0.0.1, or (None, None) without trustme."""
    try:
        import trustme
    except ImportError:
        return None, None
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


def self_test():
    server_context, client_context = tls_contexts()
    scheme = "https" if server_context else "http"
    listener = coio.create_server(("127.0.0.1", 0))
    server = stackless.tasklet(serve)(listener, server_context)
    base = "%s://127.0.0.1:%d" % (scheme, listener.getsockname()[1])
    urls = ["%s/page%d" % (base, i) for i in range(PAGES)]
    start = time.monotonic()
    bodies = fetch_all(urls, client_context)
    elapsed = time.monotonic() - start
    server.kill()
    listener.close()
    print("fetched %d %s pages in %.2f s; one at a time would take %.1f s" %
          (len(bodies), scheme.upper(), elapsed, PAGES * DELAY))
    right = all(bodies.get(u) == b"this is /page%d\n" % i for i, u in enumerate(urls))
    print("all bodies correct: %s" % right)
    return 0 if right else 1


def main(argv):
    patch.patch_all()  # before any connection is made
    if argv[1:] == ["--self-test"]:
        return self_test()
    if len(argv) < 2:
        print(__doc__)
        return 2
    start = time.monotonic()
    bodies = fetch_all(argv[1:])
    print("fetched %d of %d URLs in %.2f s" % (len(bodies), len(argv) - 1,
                                              time.monotonic() - start))
    return 0 if len(bodies) == len(argv) - 1 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
