#include "fd_watch.hpp"

#include <vector>

namespace syncless::io {

namespace {

std::vector<unsigned> fd_generations;  // every thread's, touched with the GIL

void link(FdWatch* watch, Waiter* w) noexcept {
    w->watch = watch;
    w->watch_prev = nullptr;
    w->watch_next = watch->waiters;
    if (watch->waiters != nullptr) {
        watch->waiters->watch_prev = w;
    }
    watch->waiters = w;
}

}  // namespace

unsigned fd_generation(int fd) noexcept {
    auto index = static_cast<std::size_t>(fd);
    return index < fd_generations.size() ? fd_generations[index] : 0;
}

void leave_watch(Waiter* w) noexcept {
    FdWatch* watch = w->watch;
    if (watch == nullptr) {
        return;
    }
    if (w->watch_prev != nullptr) {
        w->watch_prev->watch_next = w->watch_next;
    } else {
        watch->waiters = w->watch_next;
    }
    if (w->watch_next != nullptr) {
        w->watch_next->watch_prev = w->watch_prev;
    }
    w->watch_next = w->watch_prev = nullptr;
    w->watch = nullptr;
}

unsigned bump_fd_generation(int fd) noexcept {
    auto index = static_cast<std::size_t>(fd);
    if (index >= fd_generations.size()) {
        fd_generations.resize(index + 1 > 2 * fd_generations.size() ? index + 1
                                                                     : 2 * fd_generations.size());
    }
    return ++fd_generations[index];
}

void on_watch(evutil_socket_t, short what, void* arg) noexcept {
    auto* watch = static_cast<FdWatch*>(arg);
    watch->hub->hold_gil();
    bool someone = false;
    for (Waiter* w = watch->waiters; w != nullptr; w = w->watch_next) {
        someone = someone || w->fired == 0;
        w->fired |= what;
        watch->hub->wake(w->tasklet);
    }
    if (!someone) {
        // Ready with nobody waiting: a level-triggered watch would fire on
        // every pass until someone reads. The next wait adds it again.
        event_del(&watch->ev);
        watch->added = false;
    }
}

WaitResult wait_watched(int fd, short what, double timeout) noexcept {
    Hub* hub = nullptr;
    StacklessThread* ts = check_can_wait(&hub);
    if (ts == nullptr) {
        return WaitResult::error;
    }
    FdWatch* watch = hub->watch(fd, what);
    if (watch == nullptr) {
        return WaitResult::error;
    }
    unsigned generation = fd_generation(fd);
    if (watch->added && watch->generation != generation) {
        // Closed (in another thread) and reused since: the kernel dropped
        // the old registration, libevent still counts it.
        event_del(&watch->ev);
        watch->added = false;
    }
    if (!watch->added) {
        watch->generation = generation;
        if (event_add(&watch->ev, nullptr) < 0) {
            errno = EBADF;
            PyErr_SetFromErrno(PyExc_OSError);
            return WaitResult::error;
        }
        watch->added = true;
    }
    Waiter w;
    w.tasklet = ts->current;
    w.hub = hub;
    w.fd = fd;
    w.generation = generation;
    // The waiter's own event is only its timer (never added without one).
    event_assign(&w.ev, hub->base(), -1, 0, &on_event, &w);
    if (timeout >= 0) {
        timeval tv = to_timeval(timeout);
        event_add(&w.ev, &tv);
    }
    link(watch, &w);
    hub->add_fd_waiter(&w);
    hub->count_wait(1);
    Ref value = Ref::steal(hub->park(ts));
    hub->count_wait(-1);
    hub->remove_fd_waiter(&w);
    event_del(&w.ev);
    leave_watch(&w);  // unless a close took the watch, or us off it
    if (!value) {
        return WaitResult::error;
    }
    return wait_outcome(w.closed, (w.fired & what) != 0, (w.fired & EV_TIMEOUT) != 0);
}

}  // namespace syncless::io
