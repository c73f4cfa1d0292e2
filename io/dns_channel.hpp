// The resolver of one hub: a c-ares channel whose sockets and timeouts are
// events on the hub's event_base. They are internal: they never count as
// waits, so they alone never keep the hub in the run ring; a lookup's
// tasklet counts while it waits, and the loop then serves these events too.
#pragma once
#include <ares.h>
#include <event2/event.h>

#include <string>
#include <utility>
#include <vector>

#include "hub.hpp"

namespace syncless::io {

// What configure_dns() sets; an empty / negative field keeps c-ares' own
// default (resolv.conf, then its built-in values).
struct DnsConfig {
    std::string servers;  // ares_set_servers_ports_csv() syntax
    int timeout_ms = -1;  // per try
    int tries = -1;
};

class DnsChannel {
public:
    // The calling thread's resolver (its hub made if needed); null with an
    // exception set when it cannot be made.
    static DnsChannel* for_this_thread() noexcept;
    static DnsChannel* if_any() noexcept;
    // The thread ends: frees its resolver unless a lookup is still in
    // flight (its record points at it); true when nothing is left.
    static bool end_of_thread() noexcept;

    Hub* hub() const noexcept { return hub_; }
    // The c-ares channel, made from the configuration on first use; null
    // with an exception set when c-ares refuses it.
    ares_channel channel() noexcept;
    // After a lookup was started: its first timeout must be on the timer.
    void started() noexcept { arm_timer(); }

    // A new configuration: checked by making a channel from it first, then
    // the old channel goes and its pending lookups fail (ARES_EDESTRUCTION).
    bool configure(DnsConfig config) noexcept;
    // Drops the channel (in a forked child: its sockets and pending queries
    // are the parent's); the next lookup makes a fresh one.
    void reset() noexcept;

private:
    explicit DnsChannel(Hub* hub) noexcept : hub_(hub) {}
    ares_channel make_channel(const DnsConfig& config) noexcept;
    void drop_channel() noexcept;
    void arm_timer() noexcept;
    void process(ares_socket_t read_fd, ares_socket_t write_fd) noexcept;
    static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable) noexcept;
    static void on_socket(evutil_socket_t fd, short what, void* arg) noexcept;
    static void on_timer(evutil_socket_t, short, void* arg) noexcept;

    Hub* hub_;
    ares_channel channel_ = nullptr;
    DnsConfig config_;
    event* timer_ = nullptr;
    std::vector<std::pair<ares_socket_t, event*>> sockets_;  // c-ares has a handful
};

}  // namespace syncless::io
