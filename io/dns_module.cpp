#include "dns_module.hpp"

#include "dns_addrinfo.hpp"
#include "dns_channel.hpp"
#include "dns_query.hpp"
#include "dns_reverse.hpp"

namespace syncless::io {

namespace {

// dns_configure(servers, timeout_ms, tries): servers in c-ares' CSV syntax
// or None, the numbers -1 for c-ares' defaults.
PyObject* dns_configure(PyObject*, PyObject* args) noexcept {
    const char* servers;
    DnsConfig config;
    if (!PyArg_ParseTuple(args, "zii:dns_configure", &servers, &config.timeout_ms,
                          &config.tries)) {
        return nullptr;
    }
    DnsChannel* dns = DnsChannel::for_this_thread();
    if (dns == nullptr) {
        return nullptr;
    }
    try {
        config.servers = servers != nullptr ? servers : "";
    } catch (const std::bad_alloc&) {
        return PyErr_NoMemory();
    }
    if (!dns->configure(std::move(config))) {
        return nullptr;
    }
    Py_RETURN_NONE;
}

PyObject* dns_reset(PyObject*, PyObject*) noexcept {
    if (DnsChannel* dns = DnsChannel::if_any()) {
        dns->reset();
    }
    Py_RETURN_NONE;
}

PyObject* dns_lookups(PyObject*, PyObject*) noexcept {
    return PyLong_FromLong(dns_queries_alive());
}

}  // namespace

PyMethodDef dns_functions[] = {
    {"dns_getaddrinfo", dns_getaddrinfo, METH_VARARGS,
     "dns_getaddrinfo(name, family, flags, sort) -> (canonical, aliases, [(family, address, "
     "scope_id), ...])\n\nForward lookup (hosts file, then DNS) parking only the caller."},
    {"dns_gethostbyaddr", dns_gethostbyaddr, METH_VARARGS,
     "dns_gethostbyaddr(address) -> (name, aliases, addresses)\n\nReverse lookup; socket.herror "
     "on failure."},
    {"dns_getnameinfo", dns_getnameinfo, METH_VARARGS,
     "dns_getnameinfo(address, port, flowinfo, scope_id, flags) -> name | None\n\n"
     "The host name of an address; None when it has none."},
    {"dns_configure", dns_configure, METH_VARARGS,
     "dns_configure(servers, timeout_ms, tries)\n\nRemake this thread's resolver; pending "
     "lookups fail with EAI_AGAIN."},
    {"dns_reset", dns_reset, METH_NOARGS,
     "dns_reset()\n\nDrop this thread's resolver (after fork); the next lookup makes a fresh "
     "one with the same configuration."},
    {"dns_lookups", dns_lookups, METH_NOARGS,
     "dns_lookups() -> int\n\nLookups in flight in this thread, abandoned ones (their caller "
     "was killed) included until c-ares ends them."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace syncless::io
