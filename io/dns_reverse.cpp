#include "dns_reverse.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <strings.h>

#include <cstring>
#include <string>
#include <vector>

#include "dns_errors.hpp"
#include "dns_query.hpp"

namespace syncless::io {

namespace {

// A numeric address: its family and bytes (an IPv6 zone after '%' is the
// caller's scope_id, not part of the address).
struct Address {
    int family = AF_UNSPEC;
    union {
        in_addr v4;
        in6_addr v6;
    } bytes{};
};

bool parse_address(const char* text, Address* out) noexcept {
    if (inet_pton(AF_INET, text, &out->bytes.v4) == 1) {
        out->family = AF_INET;
        return true;
    }
    char bare[INET6_ADDRSTRLEN];
    std::size_t length = std::strcspn(text, "%");
    if (length < sizeof bare) {
        std::memcpy(bare, text, length);
        bare[length] = '\0';
        if (inet_pton(AF_INET6, bare, &out->bytes.v6) == 1) {
            out->family = AF_INET6;
            return true;
        }
    }
    PyErr_Format(PyExc_ValueError, "not a numeric IPv4 or IPv6 address: '%s'", text);
    return false;
}

// c-ares 1.18 ends a reverse lookup whose DNS step timed out with
// ENOTFOUND (it goes on to its next source); the count of timeouts tells.
// A miss answered after a lost packet then reads as a timeout as well: a
// temporary failure, which a retry turns into the miss.
int miss_or_timeout(int status, int timeouts) noexcept {
    return status == ARES_ENOTFOUND && timeouts > 0 ? ARES_ETIMEOUT : status;
}

// A hostent's strings, copied in the callback (c-ares frees the hostent).
struct HostQuery : DnsQuery {
    std::string name;
    std::vector<std::string> aliases;
    std::vector<std::string> addresses;
};

bool listed(const std::vector<std::string>& names, const char* name) noexcept {
    for (const std::string& n : names) {
        if (strcasecmp(n.c_str(), name) == 0) {
            return true;
        }
    }
    return false;
}

// c-ares puts every PTR name among the aliases, the last one also in h_name;
// hosts-file entries keep h_name out of the aliases.
void copy_host(HostQuery* query, const hostent* host) {
    query->name = host->h_name;
    for (char** a = host->h_aliases; a != nullptr && *a != nullptr; ++a) {
        if (strcasecmp(*a, host->h_name) != 0 && !listed(query->aliases, *a)) {
            query->aliases.emplace_back(*a);
        }
    }
    for (char** a = host->h_addr_list; a != nullptr && *a != nullptr; ++a) {
        char text[INET6_ADDRSTRLEN];
        if (inet_ntop(host->h_addrtype, *a, text, sizeof text) != nullptr) {
            query->addresses.emplace_back(text);
        }
    }
}

void on_host(void* arg, int status, int timeouts, hostent* host) noexcept {
    auto* query = static_cast<HostQuery*>(arg);
    status = miss_or_timeout(status, timeouts);
    if (status == ARES_SUCCESS && !query->abandoned) {
        try {
            copy_host(query, host);
        } catch (const std::bad_alloc&) {
            status = ARES_ENOMEM;
        }
    }
    dns_finish(query, status);
}

Ref string_list(const std::vector<std::string>& strings) noexcept {
    Ref list = Ref::steal(PyList_New(0));
    for (const std::string& s : strings) {
        Ref text = list ? Ref::steal(PyUnicode_FromStringAndSize(s.data(), s.size())) : Ref();
        if (!text || PyList_Append(list.get(), text.get()) < 0) {
            return Ref();
        }
    }
    return list;
}

struct NameQuery : DnsQuery {
    std::string node;
};

void on_name(void* arg, int status, int timeouts, char* node, char*) noexcept {
    auto* query = static_cast<NameQuery*>(arg);
    status = miss_or_timeout(status, timeouts);
    if (status == ARES_SUCCESS && node != nullptr && !query->abandoned) {
        try {
            query->node = node;
        } catch (const std::bad_alloc&) {
            status = ARES_ENOMEM;
        }
    }
    dns_finish(query, status);
}

}  // namespace

PyObject* dns_gethostbyaddr(PyObject*, PyObject* args) noexcept {
    const char* text;
    Address address;
    if (!PyArg_ParseTuple(args, "s:dns_gethostbyaddr", &text) || !parse_address(text, &address)) {
        return nullptr;
    }
    int size = address.family == AF_INET ? sizeof address.bytes.v4 : sizeof address.bytes.v6;
    auto query = dns_ask<HostQuery>([&](ares_channel channel, HostQuery* q) {
        ares_gethostbyaddr(channel, &address.bytes, size, address.family, &on_host, q);
    });
    if (!query) {
        return nullptr;
    }
    if (query->status != ARES_SUCCESS) {
        return raise_host_error(query->status);
    }
    Ref name = Ref::steal(PyUnicode_FromStringAndSize(query->name.data(), query->name.size()));
    Ref aliases = name ? string_list(query->aliases) : Ref();
    Ref addresses = aliases ? string_list(query->addresses) : Ref();
    if (!addresses) {
        return nullptr;
    }
    return PyTuple_Pack(3, name.get(), aliases.get(), addresses.get());
}

PyObject* dns_getnameinfo(PyObject*, PyObject* args) noexcept {
    const char* text;
    int port, flags;
    unsigned int flowinfo, scope_id;
    Address address;
    if (!PyArg_ParseTuple(args, "siIIi:dns_getnameinfo", &text, &port, &flowinfo, &scope_id,
                          &flags) ||
        !parse_address(text, &address)) {
        return nullptr;
    }
    sockaddr_in in{};
    sockaddr_in6 in6{};
    sockaddr* sa;
    ares_socklen_t size;
    if (address.family == AF_INET) {
        in.sin_family = AF_INET;
        in.sin_port = htons(static_cast<uint16_t>(port));
        in.sin_addr = address.bytes.v4;
        sa = reinterpret_cast<sockaddr*>(&in);
        size = sizeof in;
    } else {
        in6.sin6_family = AF_INET6;
        in6.sin6_port = htons(static_cast<uint16_t>(port));
        in6.sin6_flowinfo = htonl(flowinfo);
        in6.sin6_scope_id = scope_id;
        in6.sin6_addr = address.bytes.v6;
        sa = reinterpret_cast<sockaddr*>(&in6);
        size = sizeof in6;
    }
    // NAMEREQD: a miss must come back as a miss, not as c-ares' numeric
    // fallback, so a timeout stays an error (EAI_AGAIN) as in glibc.
    int ares_flags = ARES_NI_LOOKUPHOST | ARES_NI_NAMEREQD |
                     ((flags & NI_NOFQDN) != 0 ? ARES_NI_NOFQDN : 0);
    auto query = dns_ask<NameQuery>([&](ares_channel channel, NameQuery* q) {
        ares_getnameinfo(channel, sa, size, ares_flags, &on_name, q);
    });
    if (!query) {
        return nullptr;
    }
    if (query->status == ARES_ENOTFOUND || query->status == ARES_ENODATA) {
        Py_RETURN_NONE;
    }
    if (query->status != ARES_SUCCESS) {
        return raise_gai_error(query->status);
    }
    return PyUnicode_FromStringAndSize(query->node.data(), query->node.size());
}

}  // namespace syncless::io
