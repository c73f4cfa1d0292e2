#include "dns_query.hpp"

namespace syncless::io {

using namespace stackless_face;

namespace {

SYNCLESS_STATIC_TLS thread_local long alive = 0;

}  // namespace

DnsQuery::DnsQuery() noexcept { ++alive; }

DnsQuery::~DnsQuery() { --alive; }

long dns_queries_alive() noexcept { return alive; }

void dns_finish(DnsQuery* query, int status) noexcept {
    if (query->abandoned) {
        delete query;
        return;
    }
    query->status = status;
    query->done = true;
    if (query->waiting != nullptr) {
        query->hub->wake(query->waiting);
    }
}

bool dns_wait(DnsQuery* query) noexcept {
    while (!query->done) {
        StacklessThread* ts = thread_for_wait();
        if (ts == nullptr) {
            return false;
        }
        Hub* hub = query->hub;
        query->waiting = ts->current;
        hub->count_wait(1);
        Ref value = Ref::steal(hub->park(ts));
        hub->count_wait(-1);
        query->waiting = nullptr;
        if (!value) {
            return false;
        }
    }
    return true;
}

}  // namespace syncless::io
