// The one blocking primitive: park the running tasklet until an fd is
// ready, a timeout passes, or something else wakes it; on every way out the
// registration is gone.
#pragma once
#include <event2/event_struct.h>

#include <cstddef>

#include "hub.hpp"

namespace syncless::io {

struct FdWatch;

enum class WaitResult { ready, timed_out, woken_early, error };

struct Waiter {
    event ev;
    Tasklet* tasklet = nullptr;
    Hub* hub = nullptr;
    int fd = -1;
    short fired = 0;                  // what the callback saw
    bool closed = false;              // close() of the fd woke it
    Waiter* fd_next = nullptr;        // the hub's per-fd list
    Waiter* fd_prev = nullptr;
    FdWatch* watch = nullptr;         // the watch it waits through, if any
    Waiter* watch_next = nullptr;     // that watch's list
    Waiter* watch_prev = nullptr;
    unsigned generation = 0;          // its fd's generation when it started
};

// Whether a wait may start here (a tasklet, not the hub); the thread's
// state and hub, or null with an exception set.
StacklessThread* check_can_wait(Hub** hub) noexcept;

// What a finished wait reports: the exception for an fd closed under it,
// ready, timed out or woken early.
WaitResult wait_outcome(bool closed, bool ready, bool timed_out) noexcept;

timeval to_timeval(double seconds) noexcept;
void on_event(evutil_socket_t fd, short what, void* arg) noexcept;

// Waits for `what` (EV_READ and/or EV_WRITE) on fd, or (fd < 0, what 0) for
// the timeout alone. timeout < 0 waits forever. error: an exception is set
// (a bomb, kill, close() of the fd, misuse).
WaitResult wait_for(int fd, short what, double timeout) noexcept;

// Waits until at least one of several fds is ready (or the timeout passes,
// or the tasklet is woken early); `fired[i]` gets what happened to
// `fds[i]`. The same results as wait_for().
WaitResult wait_any(const int* fds, const short* what, short* fired, std::size_t count,
                    double timeout) noexcept;

// A timeout argument (None or a number of seconds >= 0) as a double, -1 for
// None; false with ValueError/TypeError otherwise.
bool parse_timeout(PyObject* arg, double* out) noexcept;

}  // namespace syncless::io
