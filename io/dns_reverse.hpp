// Reverse lookups (hosts file, then PTR records) for syncless/_coio_dns.py.
#pragma once
#include <Python.h>

namespace syncless::io {

// dns_gethostbyaddr(address: str) -> (name, [alias, ...], [address, ...])
// for a numeric IPv4/IPv6 address. With several PTR records the name is one
// of them and the aliases are the others; from the hosts file, its line.
// Failures raise socket.herror.
PyObject* dns_gethostbyaddr(PyObject* module, PyObject* args) noexcept;

// dns_getnameinfo(address: str, port, flowinfo, scope_id, flags) -> name or
// None (no name: the caller falls back to the numeric form or EAI_NONAME).
// Of flags, NI_NOFQDN counts. Other failures raise socket.gaierror.
PyObject* dns_getnameinfo(PyObject* module, PyObject* args) noexcept;

}  // namespace syncless::io
