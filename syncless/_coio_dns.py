"""Name resolution for coio: c-ares driven by this thread's hub, so a lookup
parks only the calling tasklet.

The functions take the socket module's arguments and give its results and
exceptions, with glibc's codes and messages (``gaierror`` for names,
``herror`` for reverse lookups). Numeric addresses never reach the resolver:
the stdlib answers them without a lookup, and also checks the flags, socket
types and services for getaddrinfo() as glibc does. Names are looked up in
/etc/hosts first, then in DNS with the servers of resolv.conf, unless
configure_dns() says otherwise for the calling thread (each thread's hub has
a resolver of its own). A forked child starts with a fresh resolver (same
configuration); lookups pending at the fork fail there with EAI_AGAIN.
"""
import socket as _stdsocket

# The C functions, never whatever syncless.patch (or anyone) put on the
# socket module since: ours call them for what needs no lookup.
import _socket

from ._syncless import coio_module as _coio

_AF_INET = _stdsocket.AF_INET
_AF_INET6 = _stdsocket.AF_INET6
_FAMILIES = {int(f): f for f in (_stdsocket.AF_INET, _stdsocket.AF_INET6)}
# An address of the family, to let glibc check getaddrinfo()'s other arguments.
_ANY = {_AF_INET6: "::"}
# The flags that act on the lookup itself, not on those checks.
_LOOKUP_FLAGS = (_stdsocket.AI_CANONNAME | _stdsocket.AI_ADDRCONFIG | _stdsocket.AI_V4MAPPED
                 | _stdsocket.AI_ALL)
_NUMERIC_CHARS = frozenset("0123456789abcdefABCDEFxX.")
_NAME_TYPES = (str, bytes, bytearray)


def _enum(value, kind):
    try:
        return kind(value)
    except ValueError:
        return value


def _std_getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    """socket.getaddrinfo() of the stdlib."""
    return [(_enum(af, _stdsocket.AddressFamily), _enum(kind, _stdsocket.SocketKind), protocol,
             canonname, sockaddr)
            for af, kind, protocol, canonname, sockaddr in
            _socket.getaddrinfo(host, port, family, type, proto, flags)]


def _numeric(host):
    """host's address text when glibc reads host as an address (inet_aton
    forms and IPv6 zones included), else None."""
    if not isinstance(host, str):
        try:
            host = bytes(host).decode("ascii")
        except UnicodeDecodeError:
            return None
    if ":" not in host and not _NUMERIC_CHARS.issuperset(host):
        return None
    try:
        infos = _socket.getaddrinfo(host, None, 0, _stdsocket.SOCK_STREAM, 0,
                                    _stdsocket.AI_NUMERICHOST)
    except (OSError, UnicodeError, ValueError):
        return None
    return infos[0][4][0]


def _name(host):
    """host as the socket module hands it to the resolver."""
    return host.encode("idna") if isinstance(host, str) else bytes(host)


def _special(name):
    return name in ("", "<broadcast>", b"", b"<broadcast>")


def _no_lookup(name):
    """Whether the stdlib answers (or rejects) name without a lookup."""
    return not isinstance(name, _NAME_TYPES) or _special(name) or _numeric(name) is not None


def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    """socket.getaddrinfo(); the name lookup parks only the calling tasklet."""
    if (not isinstance(host, _NAME_TYPES) or not isinstance(flags, int)
            or flags & _stdsocket.AI_NUMERICHOST or _numeric(host) is not None):
        return _std_getaddrinfo(host, port, family, type, proto, flags)
    # glibc's checks of the other arguments, and the socket types and port
    # each address comes with, from the same call for an address.
    kinds = [(info[1], info[2], info[4][1]) for info in _std_getaddrinfo(
        _ANY.get(family, "0.0.0.0"), port, family, type, proto,
        (flags & ~_LOOKUP_FLAGS) | _stdsocket.AI_NUMERICHOST)]
    canonical, _, addresses = _coio.dns_getaddrinfo(_name(host), family, flags, True)
    if not flags & _stdsocket.AI_CANONNAME:
        canonical = ""
    result = []
    for address_family, address, scope_id in addresses:
        enum = _FAMILIES[address_family]
        for kind, protocol, number in kinds:
            sockaddr = ((address, number) if address_family == _AF_INET
                        else (address, number, 0, scope_id))
            result.append((enum, kind, protocol, canonical, sockaddr))
            canonical = ""  # glibc names only the first entry
    return result


def gethostbyname(hostname):
    """socket.gethostbyname(): the first IPv4 address of hostname."""
    if _no_lookup(hostname):
        return _socket.gethostbyname(hostname)
    return _coio.dns_getaddrinfo(_name(hostname), _AF_INET, 0, True)[2][0][1]


def gethostbyname_ex(hostname):
    """socket.gethostbyname_ex(): (canonical name, CNAME or hosts-file
    aliases, IPv4 addresses)."""
    if _no_lookup(hostname):
        return _socket.gethostbyname_ex(hostname)
    canonical, aliases, addresses = _coio.dns_getaddrinfo(_name(hostname), _AF_INET, 0, False)
    return canonical, aliases, [address for _, address, _ in addresses]


def gethostbyaddr(ip_address):
    """socket.gethostbyaddr(): (name, aliases, [address]). A name is resolved
    first. Of several PTR records one is the name, the others are aliases
    (glibc keeps only the first)."""
    if not isinstance(ip_address, _NAME_TYPES) or ip_address in ("", b""):
        return _socket.gethostbyaddr(ip_address)
    if _special(ip_address):
        address = "255.255.255.255"
    else:
        address = _numeric(ip_address) or getaddrinfo(ip_address, None)[0][4][0]
    return _coio.dns_gethostbyaddr(address)


def getnameinfo(sockaddr, flags):
    """socket.getnameinfo(): (host, port) as names; the host name by a
    reverse lookup that parks only the calling tasklet."""
    if not isinstance(flags, int) or flags & _stdsocket.NI_NUMERICHOST:
        return _socket.getnameinfo(sockaddr, flags)
    # glibc's checks, the service name and the numeric host, without a lookup.
    numeric, service = _socket.getnameinfo(
        sockaddr, (flags & ~_stdsocket.NI_NAMEREQD) | _stdsocket.NI_NUMERICHOST)
    flowinfo, scope_id = (tuple(sockaddr[2:]) + (0, 0))[:2]
    name = _coio.dns_getnameinfo(numeric, sockaddr[1], flowinfo, scope_id, flags)
    if name is not None:
        return name, service
    if flags & _stdsocket.NI_NAMEREQD:
        raise _stdsocket.gaierror(_stdsocket.EAI_NONAME, "Name or service not known")
    return numeric, service


def getfqdn(name=""):
    """socket.getfqdn() through this module's gethostbyaddr()."""
    name = name.strip()
    if not name or name in ("0.0.0.0", "::"):
        name = _socket.gethostname()
    try:
        hostname, aliases, _ = gethostbyaddr(name)
    except OSError:
        return name
    for candidate in [hostname] + aliases:
        if "." in candidate:
            return candidate
    return hostname


def _server(server):
    if isinstance(server, str):
        return server
    host, port = server
    return ("[%s]:%d" if ":" in host else "%s:%d") % (host, port)


def configure_dns(servers=None, timeout=None, tries=None, hosts_file=None):
    """Remakes this thread's resolver; lookups pending in it fail with
    gaierror(EAI_AGAIN). Every argument left None takes the system's value
    (resolv.conf, else c-ares' default), so configure_dns() restores them.

    servers: DNS servers as "ip", "ip:port", "[ipv6]:port" or (ip, port).
    timeout: seconds for the first try at each server (c-ares doubles it on
    each further round); tries: how many rounds. hosts_file: c-ares 1.18
    reads only /etc/hosts (a per-resolver file needs c-ares >= 1.19,
    ARES_OPT_HOSTS_FILE), so anything but None raises NotImplementedError.
    """
    if hosts_file is not None:
        raise NotImplementedError(
            "this c-ares (1.18) reads only /etc/hosts: hosts_file needs c-ares >= 1.19")
    csv = None
    if servers is not None:
        if isinstance(servers, (str, bytes)) or not servers:
            raise ValueError("servers must be a non-empty list of 'ip:port' or (ip, port)")
        csv = ",".join(_server(server) for server in servers)
    timeout_ms = -1
    if timeout is not None:
        if not timeout > 0:
            raise ValueError("timeout must be a positive number of seconds")
        timeout_ms = max(1, round(timeout * 1000))
    if tries is not None and (not isinstance(tries, int) or tries < 1):
        raise ValueError("tries must be a positive int")
    _coio.dns_configure(csv, timeout_ms, -1 if tries is None else tries)


def resolve_address(family, address):
    """An address for connect(): host names of AF_INET/AF_INET6 resolved here,
    so the C socket never blocks the thread in getaddrinfo."""
    if family not in (_AF_INET, _AF_INET6) or not isinstance(address, tuple) or len(address) < 2:
        return address
    host = address[0]
    if not isinstance(host, str) or _special(host) or _numeric(host) is not None:
        return address
    infos = getaddrinfo(host, address[1], family, _stdsocket.SOCK_STREAM)
    resolved = infos[0][4]
    return resolved[:2] + tuple(address[2:]) if family == _AF_INET6 else resolved

