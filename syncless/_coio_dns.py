"""Name resolution for coio: literals without a system call, names in the
shared thread pool (the resolver parks only the calling tasklet)."""
import socket as _stdsocket

from ._coio_threadpool import default_pool

_INET = (_stdsocket.AF_INET, _stdsocket.AF_INET6)


def _is_literal(host):
    for family in _INET:
        try:
            _stdsocket.inet_pton(family, host)
            return True
        except (OSError, ValueError):
            pass
    return False


def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    if host is None or (isinstance(host, str) and _is_literal(host)):
        return _stdsocket.getaddrinfo(host, port, family, type, proto, flags)
    return default_pool()(_stdsocket.getaddrinfo, host, port, family, type, proto, flags)


def gethostbyname(name):
    if _is_literal(name):
        return _stdsocket.gethostbyname(name)
    return default_pool()(_stdsocket.gethostbyname, name)


def gethostbyname_ex(name):
    return default_pool()(_stdsocket.gethostbyname_ex, name)


def gethostbyaddr(address):
    return default_pool()(_stdsocket.gethostbyaddr, address)


def getnameinfo(sockaddr, flags):
    return default_pool()(_stdsocket.getnameinfo, sockaddr, flags)


def resolve_address(family, address):
    """An address for connect(): host names of AF_INET/AF_INET6 resolved here,
    so the C socket never blocks the thread in getaddrinfo."""
    if family not in _INET or not isinstance(address, tuple) or len(address) < 2:
        return address
    host = address[0]
    if not isinstance(host, str) or host in ("", "<broadcast>") or _is_literal(host):
        return address
    infos = getaddrinfo(host, address[1], family, _stdsocket.SOCK_STREAM)
    if not infos:
        raise _stdsocket.gaierror(_stdsocket.EAI_NONAME, "Name or service not known")
    resolved = infos[0][4]
    return resolved[:2] + tuple(address[2:]) if family == _stdsocket.AF_INET6 else resolved
