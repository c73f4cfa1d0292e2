"""coio's resolver: c-ares on this thread's hub, against a real dnsmasq
serving conftest.DNS_ZONE. Results, errors and messages are the socket
module's (glibc's); a lookup parks only its tasklet, and no wait outlives it
whatever ends it."""
import os
import socket
import threading
import time

import pytest

import real_servers
import syncless
from syncless import coio
from syncless._syncless import coio_module as _coio

stackless = syncless.install_stackless()

pytestmark = pytest.mark.timeout(60)

STREAM_DGRAM_RAW = [(socket.SOCK_STREAM, 6), (socket.SOCK_DGRAM, 17), (socket.SOCK_RAW, 0)]


@pytest.fixture(autouse=True)
def no_wait_outlives_its_test():
    yield
    assert _coio.waiting() == 0
    assert _coio.dns_lookups() == 0


@pytest.fixture(scope="module")
def silent_dns_server():
    """conftest's, for this module only: its thread ends with the module, so
    later tests that fork() run single-threaded."""
    with real_servers.SilentDnsServer() as server:
        yield server


@pytest.fixture
def dns(dns_server):
    coio.configure_dns(servers=[f"127.0.0.1:{dns_server.port}"])
    yield dns_server
    coio.configure_dns()


def use_silent(server, timeout):
    coio.configure_dns(servers=[(server.address, server.port)], timeout=timeout, tries=1)


@pytest.fixture
def silent(silent_dns_server):
    use_silent(silent_dns_server, 0.3)
    yield silent_dns_server
    coio.configure_dns()


class MultiPtrServer(real_servers.DnsServer):
    """dnsmasq with two PTR records for one address (a DnsZone has one name
    per address)."""

    address_with_two_names = "127.0.0.8"

    def _zone_lines(self):
        yield from super()._zone_lines()
        for name in ("first.syncless.test", "second.syncless.test"):
            yield "ptr-record=8.0.0.127.in-addr.arpa,%s" % name


@pytest.fixture(scope="module")
def multi_ptr_server():
    with MultiPtrServer(real_servers.DnsZone()) as server:
        yield server


def entries(infos):
    return [(family, kind, proto, sockaddr) for family, kind, proto, _, sockaddr in infos]


def expect_gaierror(code, call, *args):
    with pytest.raises(socket.gaierror) as caught:
        call(*args)
    assert caught.value.errno == code
    return caught.value


# --- getaddrinfo ---------------------------------------------------------

def test_getaddrinfo_gives_every_address_with_each_socket_type(dns):
    infos = coio.getaddrinfo("host.syncless.test", 80)
    v4 = [(socket.AF_INET, kind, proto, ("127.0.0.2", 80)) for kind, proto in STREAM_DGRAM_RAW]
    v6 = [(socket.AF_INET6, kind, proto, ("2001:db8::2", 80, 0, 0))
          for kind, proto in STREAM_DGRAM_RAW]
    assert sorted(entries(infos)) == sorted(v4 + v6)
    assert all(isinstance(i[0], socket.AddressFamily) and isinstance(i[1], socket.SocketKind)
               for i in infos)
    assert all(i[3] == "" for i in infos)


def test_getaddrinfo_ipv6_gives_four_tuples(dns):
    infos = coio.getaddrinfo("v6only.syncless.test", 443, socket.AF_INET6, socket.SOCK_STREAM)
    assert infos == [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2001:db8::6", 443, 0, 0))]


def test_getaddrinfo_gives_all_a_records(dns):
    infos = coio.getaddrinfo("multi.syncless.test", 8080, socket.AF_INET, socket.SOCK_STREAM)
    assert sorted(i[4] for i in infos) == [(a, 8080) for a in dns.zone.a["multi.syncless.test"]]


def test_getaddrinfo_canonname_follows_the_cname_chain(dns):
    infos = coio.getaddrinfo("alias.syncless.test", None, 0, socket.SOCK_STREAM, 0,
                             socket.AI_CANONNAME)
    assert infos[0][3] == "host.syncless.test"
    assert [i[3] for i in infos[1:]] == [""] * (len(infos) - 1)
    assert sorted(i[4][0] for i in infos) == ["127.0.0.2", "2001:db8::2"]
    # Without a CNAME the canonical name is the name as asked (glibc too).
    infos = coio.getaddrinfo("HOST.Syncless.TEST", None, socket.AF_INET, 0, 0, socket.AI_CANONNAME)
    assert infos[0][3] == "HOST.Syncless.TEST"


@pytest.mark.parametrize("port", [None, 0, 53, "53", b"53", "domain", "http"])
@pytest.mark.parametrize("kind", [0, socket.SOCK_STREAM, socket.SOCK_DGRAM])
def test_getaddrinfo_ports_and_socket_types_are_glibcs(dns, port, kind):
    # The same arguments for an address, where glibc looks nothing up.
    try:
        expected = [(k, p, sa[1]) for _, k, p, _, sa in
                    socket.getaddrinfo("127.0.0.1", port, socket.AF_INET, kind)]
    except socket.gaierror as e:
        expect_gaierror(e.errno, coio.getaddrinfo, "host.syncless.test", port, socket.AF_INET, kind)
        return
    infos = coio.getaddrinfo("host.syncless.test", port, socket.AF_INET, kind)
    assert [(k, p, sa[1]) for _, k, p, _, sa in infos] == expected


def test_getaddrinfo_v4mapped(dns):
    infos = coio.getaddrinfo("multi.syncless.test", 80, socket.AF_INET6, socket.SOCK_STREAM, 0,
                             socket.AI_V4MAPPED)
    assert sorted(i[4] for i in infos) == [("::ffff:127.0.0.%d" % n, 80, 0, 0) for n in (3, 4, 5)]
    infos = coio.getaddrinfo("host.syncless.test", 80, socket.AF_INET6, socket.SOCK_STREAM, 0,
                             socket.AI_V4MAPPED)
    assert [i[4] for i in infos] == [("2001:db8::2", 80, 0, 0)]
    infos = coio.getaddrinfo("host.syncless.test", 80, socket.AF_INET6, socket.SOCK_STREAM, 0,
                             socket.AI_V4MAPPED | socket.AI_ALL)
    assert sorted(i[4][0] for i in infos) == ["2001:db8::2", "::ffff:127.0.0.2"]


def test_getaddrinfo_addrconfig_keeps_configured_families(dns):
    # glibc applies AI_ADDRCONFIG to addresses too: it tells which count here.
    configured = set()
    for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        try:
            socket.getaddrinfo(address, None, family, 0, 0, socket.AI_ADDRCONFIG)
            configured.add(family)
        except socket.gaierror:
            pass
    infos = coio.getaddrinfo("host.syncless.test", 80, 0, socket.SOCK_STREAM, 0,
                             socket.AI_ADDRCONFIG)
    assert {i[0] for i in infos} == (configured or {socket.AF_INET, socket.AF_INET6})


def test_getaddrinfo_errors_are_glibcs(dns):
    e = expect_gaierror(socket.EAI_NONAME, coio.getaddrinfo, "nope.syncless.test", 80)
    assert str(e) == "[Errno -2] Name or service not known"
    e = expect_gaierror(socket.EAI_NODATA, coio.getaddrinfo, "v6only.syncless.test", 80,
                        socket.AF_INET)
    assert e.strerror == "No address associated with hostname"
    expect_gaierror(socket.EAI_NODATA, coio.getaddrinfo, "txt.syncless.test", 80)
    e = expect_gaierror(socket.EAI_FAMILY, coio.getaddrinfo, "host.syncless.test", 80,
                        socket.AF_UNIX)
    assert e.strerror == "ai_family not supported"
    e = expect_gaierror(socket.EAI_SERVICE, coio.getaddrinfo, "host.syncless.test", "no-such")
    assert e.strerror == "Servname not supported for ai_socktype"
    expect_gaierror(socket.EAI_NONAME, coio.getaddrinfo, "host.syncless.test", "http", 0, 0, 0,
                    socket.AI_NUMERICSERV)
    expect_gaierror(socket.EAI_SOCKTYPE, coio.getaddrinfo, "host.syncless.test", 80, 0,
                    socket.SOCK_STREAM, socket.IPPROTO_UDP)
    expect_gaierror(socket.EAI_BADFLAGS, coio.getaddrinfo, "host.syncless.test", 80, 0, 0, 0,
                    0x12345)
    # A name is never looked up with AI_NUMERICHOST.
    expect_gaierror(socket.EAI_NONAME, coio.getaddrinfo, "host.syncless.test", 80, 0, 0, 0,
                    socket.AI_NUMERICHOST)
    with pytest.raises(TypeError):
        coio.getaddrinfo(1234, 80)


@pytest.mark.parametrize("args", [
    ("127.0.0.1", 80), ("::1", 80, socket.AF_INET6), ("127.1", None), (None, 80),
    (None, 80, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE), ("fe80::1%1", 80),
    (b"10.0.0.1", "http"),
])
def test_getaddrinfo_of_an_address_is_the_stdlibs_without_a_lookup(silent, args):
    before = silent.udp_queries
    start = time.monotonic()
    assert coio.getaddrinfo(*args) == socket.getaddrinfo(*args)
    assert time.monotonic() - start < 0.2
    time.sleep(0.1)  # the server counts what it swallows every 50 ms
    assert silent.udp_queries == before


def test_works_with_the_socket_module_patched_to_itself(dns, monkeypatch):
    # syncless.patch puts these functions on the socket module: they must not
    # call themselves for what needs no lookup.
    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr",
                 "getnameinfo", "getfqdn"):
        monkeypatch.setattr(socket, name, getattr(coio, name))
    assert coio.getaddrinfo("127.0.0.1", 80, socket.AF_INET, socket.SOCK_STREAM) == [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 80))]
    assert coio.getaddrinfo("host.syncless.test", "http", socket.AF_INET)[0][4] == ("127.0.0.2", 80)
    assert coio.gethostbyname("127.0.0.1") == "127.0.0.1"
    assert coio.gethostbyname_ex("127.0.0.1") == ("127.0.0.1", [], ["127.0.0.1"])
    assert coio.gethostbyaddr("127.0.0.9")[0] == "reverse.syncless.test"
    assert coio.getnameinfo(("127.0.0.2", 80), 0) == ("host.syncless.test", "http")
    assert coio.getnameinfo(("127.0.0.2", 80), socket.NI_NUMERICHOST) == ("127.0.0.2", "http")
    assert coio.getfqdn("127.0.0.9") == "reverse.syncless.test"


# --- gethostbyname, gethostbyname_ex --------------------------------------

def test_gethostbyname(dns):
    assert coio.gethostbyname("host.syncless.test") == "127.0.0.2"
    assert coio.gethostbyname("alias.syncless.test") == "127.0.0.2"
    assert coio.gethostbyname(b"loopback.syncless.test") == "127.0.0.1"
    assert coio.gethostbyname("multi.syncless.test") in dns.zone.a["multi.syncless.test"]
    assert coio.gethostbyname("10.1.2.3") == "10.1.2.3"
    e = expect_gaierror(socket.EAI_NONAME, coio.gethostbyname, "nope.syncless.test")
    assert str(e) == "[Errno -2] Name or service not known"
    expect_gaierror(socket.EAI_NODATA, coio.gethostbyname, "v6only.syncless.test")


def test_gethostbyname_ex_gives_the_cname_chain_as_aliases(dns):
    assert coio.gethostbyname_ex("alias.syncless.test") == (
        "host.syncless.test", ["alias.syncless.test", "middle.syncless.test"], ["127.0.0.2"])
    assert coio.gethostbyname_ex("middle.syncless.test") == (
        "host.syncless.test", ["middle.syncless.test"], ["127.0.0.2"])
    name, aliases, addresses = coio.gethostbyname_ex("multi.syncless.test")
    assert (name, aliases) == ("multi.syncless.test", [])
    assert sorted(addresses) == dns.zone.a["multi.syncless.test"]
    assert coio.gethostbyname_ex("127.0.0.5") == ("127.0.0.5", [], ["127.0.0.5"])
    expect_gaierror(socket.EAI_NONAME, coio.gethostbyname_ex, "nope.syncless.test")


# --- gethostbyaddr, getnameinfo, getfqdn ----------------------------------

def test_gethostbyaddr(dns):
    assert coio.gethostbyaddr("127.0.0.9") == ("reverse.syncless.test", [], ["127.0.0.9"])
    assert coio.gethostbyaddr("2001:db8::2") == ("host.syncless.test", [], ["2001:db8::2"])
    assert coio.gethostbyaddr("2001:db8:0:0::6") == ("v6only.syncless.test", [], ["2001:db8::6"])
    name, aliases, addresses = coio.gethostbyaddr("host.syncless.test")  # looked up first
    assert (name, aliases) == ("host.syncless.test", [])
    assert addresses[0] in ("127.0.0.2", "2001:db8::2")


def test_gethostbyaddr_gives_every_ptr_name(multi_ptr_server):
    coio.configure_dns(servers=[(multi_ptr_server.address, multi_ptr_server.port)])
    try:
        name, aliases, addresses = coio.gethostbyaddr(MultiPtrServer.address_with_two_names)
    finally:
        coio.configure_dns()
    assert sorted([name] + aliases) == ["first.syncless.test", "second.syncless.test"]
    assert addresses == ["127.0.0.8"]


def test_reverse_misses_raise_herror(dns):
    with pytest.raises(socket.herror) as caught:
        coio.gethostbyaddr("127.0.0.99")
    assert caught.value.args == (1, "Unknown host")
    assert str(caught.value) == "[Errno 1] Unknown host"
    with pytest.raises(socket.herror) as caught:
        coio.gethostbyaddr("2001:db8::99")
    assert caught.value.errno == 1
    # A name is looked up first: its failure is the forward one.
    expect_gaierror(socket.EAI_NONAME, coio.gethostbyaddr, "nope.syncless.test")


def test_getnameinfo(dns):
    assert coio.getnameinfo(("127.0.0.2", 80), 0) == ("host.syncless.test", "http")
    assert coio.getnameinfo(("127.0.0.2", 53), socket.NI_DGRAM) == ("host.syncless.test", "domain")
    assert coio.getnameinfo(("127.0.0.2", 80), socket.NI_NUMERICSERV) == (
        "host.syncless.test", "80")
    assert coio.getnameinfo(("127.0.0.2", 80), socket.NI_NUMERICHOST) == ("127.0.0.2", "http")
    assert coio.getnameinfo(("2001:db8::2", 443, 0, 0), 0) == ("host.syncless.test", "https")
    assert coio.getnameinfo(("127.0.0.9", 80), socket.NI_NAMEREQD) == (
        "reverse.syncless.test", "http")
    assert coio.getnameinfo(("127.0.0.99", 80), 0) == ("127.0.0.99", "http")
    e = expect_gaierror(socket.EAI_NONAME, coio.getnameinfo, ("127.0.0.99", 80), socket.NI_NAMEREQD)
    assert e.strerror == "Name or service not known"
    # The sockaddr must hold an address, as for the stdlib.
    expect_gaierror(socket.EAI_NONAME, coio.getnameinfo, ("host.syncless.test", 80), 0)
    for bad in [("127.0.0.2",), "127.0.0.2", ("127.0.0.2", 80, 0, 0)]:
        with pytest.raises(Exception) as ours:
            coio.getnameinfo(bad, 0)
        with pytest.raises(Exception) as theirs:
            socket.getnameinfo(bad, 0)
        assert (type(ours.value), ours.value.args) == (type(theirs.value), theirs.value.args)


def test_getfqdn(dns):
    assert coio.getfqdn("127.0.0.9") == "reverse.syncless.test"
    assert coio.getfqdn("  host.syncless.test ") == "host.syncless.test"
    assert coio.getfqdn("nope.syncless.test") == "nope.syncless.test"
    assert coio.getfqdn("127.0.0.99") == "127.0.0.99"


def test_hosts_file_answers_without_the_server(silent_dns_server):
    # The server never answers (a lookup would take its 2 s timeout), so
    # these come from /etc/hosts; localhost is in every such file.
    use_silent(silent_dns_server, 2.0)
    try:
        start = time.monotonic()
        assert coio.gethostbyname("localhost") == "127.0.0.1"
        assert ("127.0.0.1", 80) in [i[4] for i in coio.getaddrinfo("localhost", 80)]
        assert coio.gethostbyaddr("127.0.0.1")[0] == socket.gethostbyaddr("127.0.0.1")[0]
        assert coio.getnameinfo(("127.0.0.1", 80), socket.NI_NAMEREQD)[0] == "localhost"
        assert time.monotonic() - start < 1.0
    finally:
        coio.configure_dns()


# --- parking, timeouts, kills ---------------------------------------------

def ticking():
    ticks = []

    def ticker():
        while True:
            ticks.append(time.monotonic())
            coio.sleep(0.01)

    return ticks, stackless.tasklet(ticker)()


def test_a_silent_server_times_out_while_other_tasklets_run(silent):
    ticks, ticker = ticking()
    before = silent.udp_queries
    start = time.monotonic()
    e = expect_gaierror(socket.EAI_AGAIN, coio.getaddrinfo, "host.syncless.test", 80)
    elapsed = time.monotonic() - start
    ticker.kill()
    assert str(e) == "[Errno -3] Temporary failure in name resolution"
    assert 0.25 < elapsed < 3
    assert silent.udp_queries > before
    # The ticker ran all along the lookup, not just around it.
    during = [t for t in ticks if start < t < start + elapsed]
    assert len(during) >= 10


def test_reverse_lookups_time_out_too(silent):
    with pytest.raises(socket.herror) as caught:
        coio.gethostbyaddr("127.0.0.9")
    assert caught.value.args == (2, "Host name lookup failure")
    expect_gaierror(socket.EAI_AGAIN, coio.getnameinfo, ("127.0.0.9", 80), 0)


def start_lookup(results, name="host.syncless.test"):
    def lookup():
        try:
            results.append(coio.getaddrinfo(name, 80))
        except stackless.TaskletExit as e:
            results.append(e)
            raise
        except Exception as e:
            results.append(e)

    t = stackless.tasklet(lookup)()
    stackless.schedule()  # it starts the lookup and parks
    assert t.alive and not t.scheduled and _coio.waiting() == 1
    return t


def healthy(dns_server):
    coio.configure_dns(servers=[(dns_server.address, dns_server.port)])
    try:
        return coio.gethostbyname("host.syncless.test") == "127.0.0.2"
    finally:
        coio.configure_dns()


def test_a_killed_lookup_leaves_no_wait(silent_dns_server, dns_server):
    use_silent(silent_dns_server, 0.2)
    results = []
    t = start_lookup(results)
    t.kill()
    assert not t.alive and isinstance(results[0], stackless.TaskletExit)
    assert _coio.waiting() == 0 and _coio.dns_lookups() == 1  # abandoned, still asked
    coio.sleep(0.4)  # c-ares gives up and frees the record
    assert _coio.dns_lookups() == 0
    assert healthy(dns_server)


def test_raise_exception_into_a_lookup_propagates(silent_dns_server, dns_server):
    use_silent(silent_dns_server, 0.2)
    results = []
    t = start_lookup(results)
    t.raise_exception(ValueError, "stop")
    stackless.run()
    assert not t.alive and isinstance(results[0], ValueError)
    assert _coio.waiting() == 0 and _coio.dns_lookups() == 1
    coio.sleep(0.4)
    assert healthy(dns_server)


def test_a_new_resolver_frees_abandoned_lookups(silent_dns_server):
    use_silent(silent_dns_server, 5.0)
    try:
        start_lookup([]).kill()
        assert _coio.dns_lookups() == 1
    finally:
        coio.configure_dns()  # the old channel ends its queries at once
    assert _coio.dns_lookups() == 0


def test_insert_does_not_end_a_lookup_early(silent_dns_server):
    use_silent(silent_dns_server, 0.3)
    try:
        results = []
        start = time.monotonic()
        t = start_lookup(results)
        t.insert()
        stackless.schedule()
        assert t.alive and not results and _coio.waiting() == 1
        stackless.run()
        assert isinstance(results[0], socket.gaierror) and results[0].errno == socket.EAI_AGAIN
        assert time.monotonic() - start > 0.25
    finally:
        coio.configure_dns()


def test_configure_dns_fails_pending_lookups_clearly(silent_dns_server, dns_server):
    use_silent(silent_dns_server, 5.0)
    results = []
    start_lookup(results)
    start = time.monotonic()
    coio.configure_dns(servers=[(dns_server.address, dns_server.port)])
    try:
        stackless.run()
        assert time.monotonic() - start < 1
        error = results[0]
        assert isinstance(error, socket.gaierror) and error.errno == socket.EAI_AGAIN
        assert "reconfigured" in error.strerror
        assert coio.gethostbyname("host.syncless.test") == "127.0.0.2"
    finally:
        coio.configure_dns()


def test_configure_dns_rejects_bad_settings_and_keeps_the_old_ones(dns):
    for kwargs, error in [(dict(servers="127.0.0.1"), ValueError), (dict(servers=[]), ValueError),
                          (dict(servers=["not an address"]), ValueError),
                          (dict(timeout=0), ValueError), (dict(tries=0), ValueError),
                          (dict(hosts_file="/etc/hosts"), NotImplementedError)]:
        with pytest.raises(error):
            coio.configure_dns(**kwargs)
    assert coio.gethostbyname("host.syncless.test") == "127.0.0.2"


def test_a_thousand_concurrent_lookups(dns):
    names = sorted(dns.zone.a)
    results = {}
    in_flight = [0, 0]  # now, most

    def lookup(i):
        in_flight[0] += 1
        in_flight[1] = max(in_flight)
        name = names[i % len(names)]
        results[i] = (name, coio.gethostbyname_ex(name)[2])
        in_flight[0] -= 1

    # dnsmasq's own socket buffer drops some of the burst: short retries.
    coio.configure_dns(servers=[(dns.address, dns.port)], timeout=0.5, tries=4)
    for i in range(1000):
        stackless.tasklet(lookup)(i)
    start = time.monotonic()
    stackless.run()
    assert len(results) == 1000
    for name, addresses in results.values():
        assert sorted(addresses) == sorted(dns.zone.a[name])
    assert in_flight[1] == 1000  # all were waiting at once
    assert time.monotonic() - start < 20


def test_dns_sockets_do_not_keep_the_hub_in_the_ring(dns):
    assert coio.gethostbyname("host.syncless.test") == "127.0.0.2"  # c-ares keeps its socket
    stackless.schedule()
    assert not coio.get_main_loop_tasklet().scheduled
    assert stackless.getruncount() == 1


def test_each_thread_has_its_own_resolver(dns, silent_dns_server):
    answers = []

    def in_thread():
        use_silent(silent_dns_server, 0.2)  # this thread's only
        try:
            coio.gethostbyname("host.syncless.test")
        except socket.gaierror as e:
            answers.append(e.errno)
        answers.append(_coio.waiting())

    thread = threading.Thread(target=in_thread)
    thread.start()
    while thread.is_alive():
        coio.sleep(0.01)  # and lookups here still use the fixture's server
        answers.append(coio.gethostbyname("alias.syncless.test"))
    thread.join()
    assert answers.count(socket.EAI_AGAIN) == 1 and 0 in answers
    assert "127.0.0.2" in answers


# The child uses only its resolver and exits; the session's silent server
# thread holds nothing it needs.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_gets_a_fresh_resolver(silent_dns_server, dns_server):
    use_silent(silent_dns_server, 5.0)
    results = []
    start_lookup(results)  # pending in this channel at the fork
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            stackless.run()  # the inherited lookup failed at the fork: its channel is gone
            error = results[0]
            status = 2
            if error.errno == socket.EAI_AGAIN and "reset" in error.strerror:
                coio.configure_dns(servers=[(dns_server.address, dns_server.port)])
                status = 0 if (coio.gethostbyname("alias.syncless.test") == "127.0.0.2"
                               and coio.gethostbyaddr("127.0.0.9")[0] == "reverse.syncless.test"
                               and _coio.waiting() == 0 and _coio.dns_lookups() == 0) else 3
        finally:
            os._exit(status)
    try:
        coio.configure_dns(servers=[(dns_server.address, dns_server.port)])
        stackless.run()
        assert results[0].errno == socket.EAI_AGAIN  # the parent's own, by configure_dns
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            coio.sleep(0.01)
        assert os.waitstatus_to_exitcode(status) == 0
        assert coio.gethostbyname("multi.syncless.test") in dns_server.zone.a["multi.syncless.test"]
    finally:
        coio.configure_dns()
