# Every test process runs on Syncless's greenlet: installed before pytest's
# plugins or any test module can import the real one.
import syncless

syncless.install_greenlet()

import pytest  # noqa: E402

import real_servers  # noqa: E402
from syncless._syncless import coio_module  # noqa: E402


@pytest.fixture
def clean_ring():
    """For stackless tests: what a test left in the run queue is killed, and
    then only main is runnable, in the thread's main greenlet, and no tasklet
    went to gc.garbage."""
    import gc

    import greenlet

    stackless = syncless.install_stackless()
    main_greenlet = greenlet.getcurrent()
    yield
    current = stackless.getcurrent()
    while current.next is not current:
        current.next.kill()
    assert stackless.getruncount() == 1
    assert greenlet.getcurrent() is main_greenlet
    assert not any(isinstance(o, stackless.tasklet) for o in gc.garbage)


@pytest.fixture(autouse=True)
def no_wait_left_registered():
    """Every test leaves no hub registration behind, whatever it did."""
    yield
    assert coio_module.waiting() == 0, "a wait left its registration behind"
    assert coio_module.stale_watches() == 0, "a closed socket left its readiness watch"

# Real servers on loopback for client tests (tests/real_servers.py): each starts
# once per run, and only if some test asks for it.
DNS_ZONE = real_servers.DnsZone(
    a={
        "host.syncless.test": ["127.0.0.2"],
        "multi.syncless.test": ["127.0.0.3", "127.0.0.4", "127.0.0.5"],
        "loopback.syncless.test": ["127.0.0.1"],
    },
    aaaa={
        "host.syncless.test": ["2001:db8::2"],
        "v6only.syncless.test": ["2001:db8::6"],
        "loopback.syncless.test": ["::1"],
    },
    cname={
        "alias.syncless.test": "middle.syncless.test",
        "middle.syncless.test": "host.syncless.test",
    },
    ptr={"127.0.0.9": "reverse.syncless.test"},
    txt={"txt.syncless.test": ["syncless test record", "second, with a comma"]},
)


@pytest.fixture(scope="session")
def dns_server():
    """dnsmasq serving DNS_ZONE (also as ``dns_server.zone``)."""
    with real_servers.DnsServer(DNS_ZONE) as server:
        yield server


@pytest.fixture(scope="session")
def silent_dns_server():
    with real_servers.SilentDnsServer() as server:
        yield server


@pytest.fixture(scope="session")
def mariadb_server():
    with real_servers.MariaDbServer() as server:
        yield server


@pytest.fixture(scope="session")
def redis_server():
    with real_servers.RedisServer() as server:
        yield server
