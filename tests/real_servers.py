"""Throw-away real servers on loopback, for client tests.

Each server runs as a child process of the test run, with a temporary directory
and configuration of its own and a free port on 127.0.0.1. ``start()`` returns
once the server answers its own protocol (or raises ServerError with the tail of
its log); ``stop()`` ends it and removes the directory. Servers are context
managers; conftest.py turns them into session fixtures. The programs come from
Debian's dnsmasq, mariadb-server and redis-server (scripts/bootstrap.sh).
"""
import dataclasses
import ipaddress
import os
import pwd
import selectors
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time

HOST = "127.0.0.1"
# Generous: the machine may be busy compiling while the tests run.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class ServerError(RuntimeError):
    pass


def _bind_tcp_and_udp():
    """A TCP and a UDP socket bound to one free loopback port (DNS serves both)."""
    for _ in range(100):
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp.bind((HOST, 0))
        try:
            udp.bind((HOST, tcp.getsockname()[1]))
        except OSError:
            tcp.close()
            udp.close()
            continue
        return tcp, udp
    raise ServerError("no loopback port is free for both TCP and UDP")


def free_port():
    """A port free on loopback now; the server binds it a moment later."""
    tcp, udp = _bind_tcp_and_udp()
    with tcp, udp:
        return tcp.getsockname()[1]


def _program(name, package):
    # Daemons live in /usr/sbin, which a non-root PATH may lack.
    path = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if path is None:
        raise ServerError("%s not found: install Debian's %s (scripts/bootstrap.sh does)" % (name, package))
    return path


def _server_env():
    # The sanitizer test run preloads ASan into itself; the servers are not ours to check.
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    return env


class _ChildServer:
    """One server program as a child process; its output goes to <tmpdir>/server.log."""

    name = None
    # DNS resolvers speak of a server's address, database clients of its host.
    address = host = HOST

    def __init__(self):
        self.port = None
        self.tmpdir = None
        self._process = None

    def _command(self):
        raise NotImplementedError

    def _answers(self):
        """True once the server answers on its port (OSError counts as not yet)."""
        raise NotImplementedError

    def _prepare(self):
        """Writes configuration or data into self.tmpdir before the start."""

    @property
    def log_path(self):
        return os.path.join(self.tmpdir, "server.log")

    def start(self):
        started = time.monotonic()
        self.tmpdir = tempfile.mkdtemp(prefix="syncless-%s-" % self.name)
        self.port = free_port()
        try:
            self._prepare()
            self._process = self._spawn(self._command())
            self._wait_until_answers(started + START_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, command):
        with open(self.log_path, "ab") as log:
            return subprocess.Popen(command, cwd=self.tmpdir, env=_server_env(),
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def _run_setup(self, command):
        """Runs a set-up program to completion before the server starts."""
        process = self._spawn(command)
        try:
            status = process.wait(START_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise self._failure("%s did not finish within %gs" % (command[0], START_TIMEOUT))
        if status != 0:
            raise self._failure("%s exited with status %d" % (command[0], status))

    def _wait_until_answers(self, deadline):
        while True:
            if self._process.poll() is not None:
                raise self._failure("exited with status %d" % self._process.returncode)
            try:
                if self._answers():
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise self._failure("did not answer on %s:%d within %gs" % (HOST, self.port, START_TIMEOUT))
            time.sleep(0.02)

    def _failure(self, what):
        return ServerError("%s %s; the end of its log:\n%s" % (self.name, what, self.log_tail()))

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, "rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - 8192))
                text = log.read().decode("utf-8", "replace")
        except OSError as e:
            return "(no log: %s)" % e
        return "\n".join(text.splitlines()[-lines:])

    def stop(self):
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            self._process = None
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


def _user():
    # Servers started as root must be told to stay root (dnsmasq and mariadbd
    # would switch to users of their own, or refuse to run).
    return pwd.getpwuid(os.geteuid()).pw_name


@dataclasses.dataclass(frozen=True)
class DnsZone:
    """The records a DnsServer serves. Names are written without the final dot.

    Every A and AAAA address also answers its reverse (PTR) query with its name,
    as a hosts file does, unless ``ptr`` names that address. A CNAME's target
    must be a name of ``a``, ``aaaa`` or another alias (dnsmasq drops others
    silently). Each ``txt`` string is a TXT record of its own. Any other name is
    NXDOMAIN.
    """
    a: dict = dataclasses.field(default_factory=dict)      # name -> [IPv4 address, ...]
    aaaa: dict = dataclasses.field(default_factory=dict)   # name -> [IPv6 address, ...]
    cname: dict = dataclasses.field(default_factory=dict)  # alias -> target name
    ptr: dict = dataclasses.field(default_factory=dict)    # IPv4 or IPv6 address -> name
    txt: dict = dataclasses.field(default_factory=dict)    # name -> [text, ...]


class DnsServer(_ChildServer):
    """dnsmasq answering ``zone`` (a DnsZone) on UDP and TCP, and nothing else."""

    name = "dnsmasq"

    def __init__(self, zone):
        super().__init__()
        self.zone = zone

    def _prepare(self):
        lines = [
            "port=%d" % self.port,
            "listen-address=%s" % HOST,
            "bind-interfaces",
            "user=%s" % _user(),
            "pid-file=",
            # No upstream, /etc/hosts or /etc/resolv.conf: unknown names are
            # NXDOMAIN instead of REFUSED, whatever the machine's setup.
            "no-resolv",
            "no-hosts",
            "local=/#/",
            "log-queries",
        ]
        lines.extend(self._zone_lines())
        with open(os.path.join(self.tmpdir, "dnsmasq.conf"), "w") as conf:
            conf.write("\n".join(lines) + "\n")

    def _zone_lines(self):
        zone = self.zone
        # A CNAME target must be a host-record name: address= would not do.
        for records in (zone.a, zone.aaaa):
            for name, addresses in records.items():
                for address in addresses:
                    yield "host-record=%s,%s" % (name, address)
        for alias, target in zone.cname.items():
            yield "cname=%s,%s" % (alias, target)
        for address, name in zone.ptr.items():
            yield "ptr-record=%s,%s" % (ipaddress.ip_address(address).reverse_pointer, name)
        for name, texts in zone.txt.items():
            for text in texts:
                yield 'txt-record=%s,"%s"' % (name, text.replace("\\", "\\\\").replace('"', '\\"'))

    def _command(self):
        return [_program("dnsmasq", "dnsmasq"), "--no-daemon", "--conf-file=" + os.path.join(self.tmpdir, "dnsmasq.conf")]

    def _answers(self):
        # The root's NS, transaction id 0x5359: any reply shows it is up.
        query = struct.pack("!6H", 0x5359, 0x0100, 1, 0, 0, 0) + b"\0" + struct.pack("!2H", 2, 1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.2)
            sock.connect((HOST, self.port))
            sock.send(query)
            return sock.recv(512)[:2] == b"\x53\x59"


class SilentDnsServer:
    """Takes DNS queries on UDP and TCP on one loopback port and never answers.

    For resolver timeouts and retries: ``udp_queries`` counts the datagrams it
    swallowed; TCP connections are accepted and left hanging. A thread of the
    test process rather than a child: it has nothing to configure.
    """

    address = HOST

    def __init__(self):
        self.port = None
        self.udp_queries = 0
        self._stopping = threading.Event()
        self._thread = None

    def start(self):
        tcp, udp = _bind_tcp_and_udp()
        tcp.listen()
        self.port = tcp.getsockname()[1]
        self._stopping.clear()
        self._thread = threading.Thread(target=self._swallow, args=(tcp, udp), name="SilentDnsServer", daemon=True)
        self._thread.start()
        return self

    def _swallow(self, tcp, udp):
        with selectors.DefaultSelector() as selector:
            selector.register(tcp, selectors.EVENT_READ)
            selector.register(udp, selectors.EVENT_READ)
            # Polled rather than woken: stop() need not touch the sockets.
            while not self._stopping.is_set():
                for key, _ in selector.select(0.05):
                    sock = key.fileobj
                    if sock is udp:
                        sock.recvfrom(65536)
                        self.udp_queries += 1
                    elif sock is tcp:
                        selector.register(sock.accept()[0], selectors.EVENT_READ)
                    else:
                        self._drain(selector, sock)
            for key in list(selector.get_map().values()):
                key.fileobj.close()

    @staticmethod
    def _drain(selector, conn):
        try:
            if conn.recv(65536):
                return
        except OSError:  # a client that gave up may reset
            pass
        selector.unregister(conn)
        conn.close()

    def stop(self):
        if self._thread is not None:
            self._stopping.set()
            self._thread.join(STOP_TIMEOUT)
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


class MariaDbServer(_ChildServer):
    """mariadbd with a fresh data directory and a password user for TCP clients.

    Clients log in over TCP as ``user``/``password`` to ``database``, which that
    user owns; ``connect_args`` has those for PyMySQL and mysql-connector.
    """

    name = "mariadb"
    user = "test"
    password = "test"
    database = "test"

    # Small InnoDB files: less to create and write at each start.
    _innodb = ["--innodb-buffer-pool-size=16M", "--innodb-log-file-size=4M"]

    @property
    def unix_socket(self):
        return os.path.join(self.tmpdir, "mariadb.sock")

    @property
    def connect_args(self):
        return dict(host=self.host, port=self.port, user=self.user, password=self.password, database=self.database)

    def _prepare(self):
        self._run_setup([
            _program("mariadb-install-db", "mariadb-server"), "--no-defaults",
            "--user=" + _user(), "--datadir=" + self._datadir(), "--skip-test-db",
        ] + self._innodb)
        # Run by mariadbd itself before it takes connections: no client needed.
        with open(os.path.join(self.tmpdir, "init.sql"), "w") as init:
            init.write(
                "CREATE DATABASE {db};\n"
                "CREATE USER '{user}'@'%' IDENTIFIED BY '{password}';\n"
                "GRANT ALL ON {db}.* TO '{user}'@'%';\n".format(
                    db=self.database, user=self.user, password=self.password))

    def _datadir(self):
        return os.path.join(self.tmpdir, "data")

    def _command(self):
        return [
            _program("mariadbd", "mariadb-server"), "--no-defaults", "--user=" + _user(),
            "--datadir=" + self._datadir(),
            "--socket=" + self.unix_socket,
            "--pid-file=" + os.path.join(self.tmpdir, "mariadb.pid"),
            "--port=%d" % self.port, "--bind-address=" + HOST, "--skip-name-resolve",
            "--init-file=" + os.path.join(self.tmpdir, "init.sql"),
            "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci",
            # A throw-away database needs no fsync per commit.
            "--innodb-flush-log-at-trx-commit=0",
        ] + self._innodb

    def _answers(self):
        # The handshake packet (protocol version 10) comes once it takes logins.
        with socket.create_connection((HOST, self.port), timeout=1) as sock:
            return sock.recv(5)[4:5] == b"\x0a"


class RedisServer(_ChildServer):
    """redis-server, in memory only (nothing saved to disk)."""

    name = "redis"

    def _command(self):
        return [
            _program("redis-server", "redis-server"), "--port", str(self.port), "--bind", HOST,
            "--save", "", "--appendonly", "no", "--dir", self.tmpdir,
        ]

    def _answers(self):
        with socket.create_connection((HOST, self.port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(7) == b"+PONG\r\n"
