// Forward lookups through ares_getaddrinfo (hosts file, then DNS), for
// syncless/_coio_dns.py, which gives them the socket module's shapes.
#pragma once
#include <Python.h>

namespace syncless::io {

// dns_getaddrinfo(name: bytes, family, flags, sort) ->
//     (canonical name, [alias, ...], [(family, address, scope_id), ...])
// family is AF_UNSPEC, AF_INET or AF_INET6; of flags, AI_ADDRCONFIG,
// AI_V4MAPPED and AI_ALL count (glibc's rules). The aliases are the CNAME
// chain's names (or the hosts file's aliases) in order, the canonical name
// its end. sort: RFC 6724 order, as getaddrinfo() gives; else as answered.
// Failures raise socket.gaierror.
PyObject* dns_getaddrinfo(PyObject* module, PyObject* args) noexcept;

}  // namespace syncless::io
