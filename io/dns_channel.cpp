#include "dns_channel.hpp"
#include "dns_query.hpp"

#include <algorithm>
#include <new>

namespace syncless::io {

namespace {

SYNCLESS_STATIC_TLS thread_local DnsChannel* this_channel = nullptr;

// Once per process before the first channel. The flag is read and set with
// the GIL held, which serialises the threads that make channels.
bool library_ready() noexcept {
    static bool ready = false;
    if (!ready) {
        int status = ares_library_init(ARES_LIB_INIT_ALL);
        if (status != ARES_SUCCESS) {
            PyErr_Format(PyExc_OSError, "c-ares: %s", ares_strerror(status));
            return false;
        }
        ready = true;
    }
    return true;
}

}  // namespace

DnsChannel* DnsChannel::if_any() noexcept { return this_channel; }

bool DnsChannel::end_of_thread() noexcept {
    DnsChannel* dns = this_channel;
    if (dns == nullptr) {
        return true;
    }
    if (dns_queries_alive() > 0) {
        return false;
    }
    dns->drop_channel();
    event_free(dns->timer_);
    delete dns;
    this_channel = nullptr;
    return true;
}

DnsChannel* DnsChannel::for_this_thread() noexcept {
    if (this_channel != nullptr) {
        return this_channel;
    }
    Hub* hub = Hub::for_this_thread();
    if (hub == nullptr) {
        return nullptr;
    }
    // Lives as long as the hub: its events point at it.
    auto* dns = new (std::nothrow) DnsChannel(hub);
    if (dns == nullptr) {
        PyErr_NoMemory();
        return nullptr;
    }
    dns->timer_ = evtimer_new(hub->base(), &on_timer, dns);
    if (dns->timer_ == nullptr) {
        delete dns;
        PyErr_SetString(PyExc_OSError, "libevent: cannot make the DNS timer");
        return nullptr;
    }
    this_channel = dns;
    return dns;
}

ares_channel DnsChannel::channel() noexcept {
    if (channel_ == nullptr) {
        channel_ = make_channel(config_);
    }
    return channel_;
}

ares_channel DnsChannel::make_channel(const DnsConfig& config) noexcept {
    if (!library_ready()) {
        return nullptr;
    }
    ares_options options{};
    int mask = ARES_OPT_SOCK_STATE_CB;
    options.sock_state_cb = &on_sock_state;
    options.sock_state_cb_data = this;
    // Answers to a burst of lookups arrive before the hub reads any: the
    // default buffer (~200 KiB, ~250 datagrams) drops the rest, and each
    // drop costs a full timeout. The kernel caps this at rmem_max.
    options.socket_receive_buffer_size = 4 << 20;
    mask |= ARES_OPT_SOCK_RCVBUF;
    if (config.timeout_ms >= 0) {
        options.timeout = config.timeout_ms;
        mask |= ARES_OPT_TIMEOUTMS;
    }
    if (config.tries >= 0) {
        options.tries = config.tries;
        mask |= ARES_OPT_TRIES;
    }
    ares_channel made = nullptr;
    int status = ares_init_options(&made, &options, mask);
    if (status != ARES_SUCCESS) {
        PyErr_Format(status == ARES_ENOMEM ? PyExc_MemoryError : PyExc_OSError,
                     "c-ares cannot make a resolver: %s", ares_strerror(status));
        return nullptr;
    }
    if (!config.servers.empty()) {
        status = ares_set_servers_ports_csv(made, config.servers.c_str());
        if (status != ARES_SUCCESS) {
            ares_destroy(made);
            PyErr_Format(PyExc_ValueError, "c-ares rejects the DNS servers '%s': %s",
                         config.servers.c_str(), ares_strerror(status));
            return nullptr;
        }
    }
    return made;
}

bool DnsChannel::configure(DnsConfig config) noexcept {
    ares_channel fresh = make_channel(config);
    if (fresh == nullptr) {
        return false;
    }
    drop_channel();
    channel_ = fresh;
    config_ = std::move(config);
    return true;
}

void DnsChannel::reset() noexcept { drop_channel(); }

// Pending lookups end with ARES_EDESTRUCTION (their tasklets wake); the
// sockets leave the base through on_sock_state. In a forked child this must
// come after the hub's reinit: before it, the deletes would reach the epoll
// set the child still shares with its parent (coio's fork hook orders them).
void DnsChannel::drop_channel() noexcept {
    if (channel_ != nullptr) {
        ares_channel old = channel_;
        channel_ = nullptr;
        ares_destroy(old);
    }
    evtimer_del(timer_);
}

void DnsChannel::arm_timer() noexcept {
    timeval tv;
    timeval* next = channel_ != nullptr ? ares_timeout(channel_, nullptr, &tv) : nullptr;
    if (next == nullptr) {
        evtimer_del(timer_);
    } else {
        evtimer_add(timer_, next);
    }
}

void DnsChannel::process(ares_socket_t read_fd, ares_socket_t write_fd) noexcept {
    if (channel_ != nullptr) {
        ares_process_fd(channel_, read_fd, write_fd);
    }
    arm_timer();
}

void DnsChannel::on_sock_state(void* data, ares_socket_t fd, int readable,
                               int writable) noexcept {
    auto* dns = static_cast<DnsChannel*>(data);
    auto& sockets = dns->sockets_;
    auto found = std::find_if(sockets.begin(), sockets.end(),
                              [fd](const auto& entry) { return entry.first == fd; });
    if (found != sockets.end()) {
        event_free(found->second);  // deletes it first
        sockets.erase(found);
    }
    if (!readable && !writable) {
        return;  // c-ares closes it next
    }
    short what =
        static_cast<short>(EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
    event* ev = event_new(dns->hub_->base(), fd, what, &on_socket, dns);
    if (ev == nullptr || event_add(ev, nullptr) < 0) {
        // Unwatched, the socket's queries still end by their timeout.
        if (ev != nullptr) {
            event_free(ev);
        }
        return;
    }
    sockets.emplace_back(fd, ev);
}

void DnsChannel::on_socket(evutil_socket_t fd, short what, void* arg) noexcept {
    auto* dns = static_cast<DnsChannel*>(arg);
    dns->hub_->hold_gil();
    dns->process((what & EV_READ) ? fd : ARES_SOCKET_BAD, (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
}

void DnsChannel::on_timer(evutil_socket_t, short, void* arg) noexcept {
    auto* dns = static_cast<DnsChannel*>(arg);
    dns->hub_->hold_gil();
    dns->process(ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}

}  // namespace syncless::io
