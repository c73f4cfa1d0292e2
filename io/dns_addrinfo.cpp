#include "dns_addrinfo.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <strings.h>

#include <cstring>
#include <vector>

#include "dns_errors.hpp"
#include "dns_query.hpp"

namespace syncless::io {

namespace {

struct AddrinfoQuery : DnsQuery {
    ares_addrinfo* answer = nullptr;
    ~AddrinfoQuery() override {
        if (answer != nullptr) {
            ares_freeaddrinfo(answer);
        }
    }
};

void on_addrinfo(void* arg, int status, int, ares_addrinfo* answer) noexcept {
    auto* query = static_cast<AddrinfoQuery*>(arg);
    query->answer = answer;
    dns_finish(query, status);
}

// glibc's AI_ADDRCONFIG test: a family counts when some interface has an
// address of it other than the loopback one. Unknown (no getifaddrs): both.
void configured_families(bool* v4, bool* v6) noexcept {
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) < 0) {
        *v4 = *v6 = true;
        return;
    }
    *v4 = *v6 = false;
    for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
        if (a->ifa_addr == nullptr) {
            continue;
        }
        if (a->ifa_addr->sa_family == AF_INET) {
            auto* in = reinterpret_cast<sockaddr_in*>(a->ifa_addr);
            *v4 = *v4 || in->sin_addr.s_addr != htonl(INADDR_LOOPBACK);
        } else if (a->ifa_addr->sa_family == AF_INET6) {
            auto* in6 = reinterpret_cast<sockaddr_in6*>(a->ifa_addr);
            *v6 = *v6 || !IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
        }
    }
    freeifaddrs(list);
}

// The family to ask for, as glibc narrows it for AI_ADDRCONFIG; -1 when no
// answer can be valid (EAI_NONAME).
int family_to_ask(int family, int flags) noexcept {
    if ((flags & AI_ADDRCONFIG) != 0) {
        bool v4, v6;
        configured_families(&v4, &v6);
        if (family == AF_UNSPEC && v4 != v6) {
            family = v4 ? AF_INET : AF_INET6;
        } else if ((family == AF_INET && !v4) || (family == AF_INET6 && !v6)) {
            return -1;
        }
    }
    // AI_V4MAPPED needs the A records too.
    return family == AF_INET6 && (flags & AI_V4MAPPED) != 0 ? AF_UNSPEC : family;
}

bool same_name(const char* a, const char* b) noexcept { return strcasecmp(a, b) == 0; }

bool contains(const std::vector<const char*>& names, const char* name) noexcept {
    for (const char* n : names) {
        if (same_name(n, name)) {
            return true;
        }
    }
    return false;
}

// c-ares lists each CNAME (alias -> target) once per answered family, and
// for hosts-file entries every alias -> canonical, plus the canonical name
// alone when it was asked for.
Ref names_of(const ares_addrinfo* answer, const char* asked, Ref* canonical) noexcept {
    std::vector<const char*> aliases;
    for (const ares_addrinfo_cname* c = answer->cnames; c != nullptr; c = c->next) {
        if (c->alias != nullptr && !contains(aliases, c->alias)) {
            aliases.push_back(c->alias);
        }
    }
    const char* end = answer->name != nullptr ? answer->name : asked;
    for (const ares_addrinfo_cname* c = answer->cnames; c != nullptr; c = c->next) {
        if (c->name != nullptr && !contains(aliases, c->name)) {
            end = c->name;
            break;
        }
    }
    *canonical = Ref::steal(PyUnicode_FromString(end));
    Ref list = Ref::steal(PyList_New(0));
    if (!*canonical || !list) {
        return Ref();
    }
    for (const char* alias : aliases) {
        Ref text = Ref::steal(PyUnicode_FromString(alias));
        if (!text || PyList_Append(list.get(), text.get()) < 0) {
            return Ref();
        }
    }
    return list;
}

// ::ffff:a.b.c.d for AI_V4MAPPED.
in6_addr mapped(const in_addr& v4) noexcept {
    in6_addr v6{};
    v6.s6_addr[10] = 0xff;
    v6.s6_addr[11] = 0xff;
    std::memcpy(&v6.s6_addr[12], &v4, sizeof v4);
    return v6;
}

Ref entry(int family, const void* address, unsigned scope_id) noexcept {
    char text[INET6_ADDRSTRLEN];
    if (inet_ntop(family, address, text, sizeof text) == nullptr) {
        PyErr_SetFromErrno(PyExc_OSError);
        return Ref();
    }
    return Ref::steal(Py_BuildValue("(isI)", family, text, scope_id));
}

// The answer's addresses; with AI_V4MAPPED (family AF_INET6) IPv4 ones are
// mapped: only when there is no IPv6 one, or all of them with AI_ALL.
Ref addresses_of(const ares_addrinfo* answer, int family, int flags) noexcept {
    bool map = family == AF_INET6 && (flags & AI_V4MAPPED) != 0;
    bool any_v6 = false;
    for (const ares_addrinfo_node* n = answer->nodes; n != nullptr; n = n->ai_next) {
        any_v6 = any_v6 || n->ai_family == AF_INET6;
    }
    bool keep_v4 = !map || (flags & AI_ALL) != 0 || !any_v6;
    Ref list = Ref::steal(PyList_New(0));
    for (const ares_addrinfo_node* n = answer->nodes; list && n != nullptr; n = n->ai_next) {
        Ref item;
        if (n->ai_family == AF_INET6) {
            auto* in6 = reinterpret_cast<const sockaddr_in6*>(n->ai_addr);
            item = entry(AF_INET6, &in6->sin6_addr, in6->sin6_scope_id);
        } else if (n->ai_family == AF_INET && keep_v4) {
            auto* in = reinterpret_cast<const sockaddr_in*>(n->ai_addr);
            if (map) {
                in6_addr v6 = mapped(in->sin_addr);
                item = entry(AF_INET6, &v6, 0);
            } else {
                item = entry(AF_INET, &in->sin_addr, 0);
            }
        } else {
            continue;
        }
        if (!item || PyList_Append(list.get(), item.get()) < 0) {
            return Ref();
        }
    }
    return list;
}

}  // namespace

PyObject* dns_getaddrinfo(PyObject*, PyObject* args) noexcept {
    const char* name;
    int family, flags, sort;
    if (!PyArg_ParseTuple(args, "yiip:dns_getaddrinfo", &name, &family, &flags, &sort)) {
        return nullptr;
    }
    if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6) {
        return raise_gai_error(ARES_EBADFAMILY);
    }
    int ask = family_to_ask(family, flags);
    if (ask < 0) {
        return raise_gai_error(ARES_ENOTFOUND);
    }
    ares_addrinfo_hints hints{};
    hints.ai_family = ask;
    // Always: hosts-file aliases and the canonical name come only with it.
    hints.ai_flags = ARES_AI_CANONNAME | (sort ? 0 : ARES_AI_NOSORT);
    auto query = dns_ask<AddrinfoQuery>([&](ares_channel channel, AddrinfoQuery* q) {
        ares_getaddrinfo(channel, name, nullptr, &hints, &on_addrinfo, q);
    });
    if (!query) {
        return nullptr;
    }
    if (query->status != ARES_SUCCESS) {
        return raise_gai_error(query->status);
    }
    Ref canonical;
    Ref aliases = names_of(query->answer, name, &canonical);
    Ref addresses = aliases ? addresses_of(query->answer, family, flags) : Ref();
    if (!addresses) {
        return nullptr;
    }
    if (PyList_GET_SIZE(addresses.get()) == 0) {
        return raise_gai_error(ARES_ENODATA);
    }
    return PyTuple_Pack(3, canonical.get(), aliases.get(), addresses.get());
}

}  // namespace syncless::io
