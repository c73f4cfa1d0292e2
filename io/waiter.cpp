#include "waiter.hpp"

#include <poll.h>

#include <cerrno>
#include <cmath>
#include <memory>
#include <new>

#include "fd_watch.hpp"

namespace syncless::io {

using namespace stackless_face;

void on_event(evutil_socket_t, short what, void* arg) noexcept {
    auto* w = static_cast<Waiter*>(arg);
    w->hub->hold_gil();
    w->fired |= what;
    w->hub->wake(w->tasklet);
}

timeval to_timeval(double seconds) noexcept {
    timeval tv;
    double whole = std::floor(seconds);
    tv.tv_sec = static_cast<time_t>(whole);
    tv.tv_usec = static_cast<suseconds_t>((seconds - whole) * 1e6);
    return tv;
}

StacklessThread* check_can_wait(Hub** hub) noexcept {
    StacklessThread* ts = thread_for_wait();
    if (ts == nullptr) {
        return nullptr;
    }
    *hub = Hub::for_this_thread();
    if (*hub == nullptr) {
        return nullptr;
    }
    if (ts->current == (*hub)->tasklet()) {
        PyErr_SetString(PyExc_RuntimeError,
                        "cannot block in the hub (a signal handler or event callback waited)");
        return nullptr;
    }
    return ts;
}

WaitResult wait_outcome(bool closed, bool ready, bool timed_out) noexcept {
    if (closed) {
        Ref args = Ref::steal(Py_BuildValue(
            "(is)", EBADF, "File descriptor was closed while a coroutine waited on it"));
        if (args) {
            PyErr_SetObject(PyExc_OSError, args.get());
        }
        return WaitResult::error;
    }
    if (ready) {
        return WaitResult::ready;
    }
    return timed_out ? WaitResult::timed_out : WaitResult::woken_early;
}

namespace {

// time.sleep's and settimeout()'s limit: a _PyTime_t of nanoseconds.
constexpr double max_timeout = 9.2e9;

short events_for_poll(short what) noexcept {
    return static_cast<short>(((what & EV_READ) ? POLLIN : 0) | ((what & EV_WRITE) ? POLLOUT : 0));
}

// Errors and hang-ups count as ready: the next call reports them.
short fired_from_poll(short revents, short what) noexcept {
    bool bad = (revents & (POLLERR | POLLHUP)) != 0;
    return static_cast<short>((((revents & POLLIN) || bad) ? EV_READ : 0) |
                              (((revents & POLLOUT) || bad) ? EV_WRITE : 0)) &
           what;
}

}  // namespace

bool parse_timeout(PyObject* arg, double* out) noexcept {
    if (arg == nullptr || arg == Py_None) {
        *out = -1.0;
        return true;
    }
    double value = PyFloat_AsDouble(arg);
    if (value == -1.0 && PyErr_Occurred()) {
        return false;
    }
    if (std::isnan(value)) {
        PyErr_SetString(PyExc_ValueError, "Invalid value NaN (not a number)");
        return false;
    }
    if (value < 0) {
        PyErr_SetString(PyExc_ValueError, "Timeout value out of range");
        return false;
    }
    if (value > max_timeout) {
        PyErr_SetString(PyExc_OverflowError, "timeout doesn't fit into C timeval");
        return false;
    }
    *out = value;
    return true;
}

WaitResult wait_for(int fd, short what, double timeout) noexcept {
    short fired = 0;
    return wait_any(&fd, &what, &fired, 1, timeout);
}

WaitResult wait_any(const int* fds, const short* what, short* fired, std::size_t count,
                    double timeout) noexcept {
    Hub* hub = nullptr;
    StacklessThread* ts = check_can_wait(&hub);
    if (ts == nullptr) {
        return WaitResult::error;
    }
    // One event per fd; a pure timeout is one fd-less event.
    Waiter one;
    std::unique_ptr<Waiter[]> many;
    Waiter* waiters = &one;
    if (count > 1) {
        many.reset(new (std::nothrow) Waiter[count]);
        if (!many) {
            PyErr_NoMemory();
            return WaitResult::error;
        }
        waiters = many.get();
    }
    timeval tv = to_timeval(timeout >= 0 ? timeout : 0);
    std::size_t added = 0;
    bool ok = true;
    // Ready now (a regular file always is, and epoll refuses those), or a
    // bad fd (libevent would learn of it only when it applies the change,
    // and then never fire): answer without parking.
    pollfd one_probe;
    std::unique_ptr<pollfd[]> many_probes;
    pollfd* probes = &one_probe;  // a single wait allocates nothing
    if (count > 1) {
        many_probes.reset(new (std::nothrow) pollfd[count]);
        if (!many_probes) {
            PyErr_NoMemory();
            return WaitResult::error;
        }
        probes = many_probes.get();
    }
    std::size_t polled = 0;
    for (std::size_t i = 0; i < count; ++i) {
        if (fds[i] >= 0) {
            probes[polled++] = pollfd{fds[i], events_for_poll(what[i]), 0};
        }
    }
    if (polled > 0) {
        int n = poll(probes, polled, 0);
        if (n < 0) {
            PyErr_SetFromErrno(PyExc_OSError);
            return WaitResult::error;
        }
        if (n > 0) {
            std::size_t k = 0;
            for (std::size_t i = 0; i < count; ++i) {
                fired[i] = 0;
                if (fds[i] < 0) {
                    continue;
                }
                short revents = probes[k++].revents;
                if (revents & POLLNVAL) {
                    errno = EBADF;
                    PyErr_SetFromErrno(PyExc_OSError);
                    return WaitResult::error;
                }
                fired[i] = fired_from_poll(revents, what[i]);
            }
            return WaitResult::ready;
        }
    }
    if (timeout == 0) {
        return WaitResult::timed_out;
    }
    for (; added < count; ++added) {
        Waiter& w = waiters[added];
        w.tasklet = ts->current;
        w.hub = hub;
        w.fd = fds[added];
        w.generation = w.fd >= 0 ? fd_generation(w.fd) : 0;
        event_assign(&w.ev, hub->base(), w.fd, what[added], &on_event, &w);
        // Only the first carries the timeout: one timer for the whole wait.
        if (event_add(&w.ev, timeout >= 0 && added == 0 ? &tv : nullptr) < 0) {
            errno = w.fd >= 0 ? EBADF : EINVAL;
            PyErr_SetFromErrno(PyExc_OSError);
            ok = false;
            break;
        }
        if (w.fd >= 0) {
            hub->add_fd_waiter(&w);
        }
    }
    Ref value;
    if (ok) {
        hub->count_wait(1);
        value = Ref::steal(hub->park(ts));
        hub->count_wait(-1);
    }
    // Every way out: an event fired, the timeout passed, an insert() or a
    // bomb woke it early, close() of an fd cancelled it, or adding failed.
    bool closed = false;
    bool ready = false;
    bool timed_out = false;
    for (std::size_t i = 0; i < added; ++i) {
        Waiter& w = waiters[i];
        event_del(&w.ev);
        if (w.fd >= 0) {
            hub->remove_fd_waiter(&w);
        }
        closed = closed || w.closed;
        fired[i] = static_cast<short>(w.fired & (EV_READ | EV_WRITE));
        ready = ready || fired[i] != 0;
        timed_out = timed_out || (w.fired & EV_TIMEOUT) != 0;
    }
    if (!value) {
        return WaitResult::error;
    }
    return wait_outcome(closed, ready, timed_out);
}

}  // namespace syncless::io
