// One lookup in flight: a heap record that c-ares' callback fills in while
// only the calling tasklet waits. A caller woken by an exception (kill,
// bomb) abandons the record: the callback frees it later without touching
// the tasklet, whose wait is already over.
#pragma once
#include <ares.h>

#include <memory>
#include <new>

#include "dns_channel.hpp"

namespace syncless::io {

struct DnsQuery {
    Hub* hub = nullptr;
    Tasklet* waiting = nullptr;  // parked on the answer (borrowed)
    int status = ARES_SUCCESS;
    bool done = false;
    bool abandoned = false;

    DnsQuery() noexcept;
    virtual ~DnsQuery();
    DnsQuery(const DnsQuery&) = delete;
    DnsQuery& operator=(const DnsQuery&) = delete;
};

// Records alive in this thread: lookups waited on, and abandoned ones that
// c-ares has not ended yet (tests check that none leaks).
long dns_queries_alive() noexcept;

// In the c-ares callback, after storing the answer in the record: frees an
// abandoned record, else marks it done and wakes its tasklet.
void dns_finish(DnsQuery* query, int status) noexcept;

// Parks the calling tasklet until the record is done; an insert() or run()
// of it does not end the wait. false with the exception that woke it.
bool dns_wait(DnsQuery* query) noexcept;

// Starts a lookup with `start(channel, record)` and parks until its answer:
// the done record, or null with an exception set (the record is then the
// callback's to free if c-ares still holds it).
template <class Query, class Start>
std::unique_ptr<Query> dns_ask(Start start) noexcept {
    if (stackless_face::thread_for_wait() == nullptr) {
        return nullptr;  // no lookup this caller could not wait for
    }
    DnsChannel* dns = DnsChannel::for_this_thread();
    ares_channel channel = dns != nullptr ? dns->channel() : nullptr;
    if (channel == nullptr) {
        return nullptr;
    }
    std::unique_ptr<Query> query(new (std::nothrow) Query());
    if (!query) {
        PyErr_NoMemory();
        return nullptr;
    }
    query->hub = dns->hub();
    start(channel, query.get());  // c-ares may answer at once (hosts file, errors)
    dns->started();
    if (!dns_wait(query.get())) {
        if (!query->done) {
            query->abandoned = true;
            query.release();
        }
        return nullptr;
    }
    return query;
}

}  // namespace syncless::io
