// Persistent readiness watches for coio's own sockets.
//
// A one-shot registration per wait costs an epoll_ctl per message on a
// request/response socket (libevent turns the delete of a fired event and
// the next wait's add into a MOD). A watch stays registered between waits
// and leaves epoll lazily: when it fires while nobody waits, or when the
// socket closes (close(), detach() and __del__ drop it through
// cancel_waiters). So only fds whose closing coio sees may use a watch.
#pragma once
#include "waiter.hpp"

namespace syncless::io {

struct FdWatch {
    event ev;                   // fd, EV_READ or EV_WRITE, EV_PERSIST
    Hub* hub = nullptr;
    Waiter* waiters = nullptr;  // through Waiter::watch_next
    bool added = false;
    unsigned generation = 0;    // the fd's generation when it was added
};

// Every close through coio bumps its fd's generation (GIL held, any
// thread). Waits and watches remember the generation they started in: the
// closing thread's hub cancels older ones at once, other threads' hubs when
// their loop reads the message (their loop may run without the GIL), and a
// watch from an older generation is re-added by the fd's next user.
unsigned bump_fd_generation(int fd) noexcept;
unsigned fd_generation(int fd) noexcept;
// Whether generation `a` came before `b` (wrap-around safe).
inline bool older(unsigned a, unsigned b) noexcept { return static_cast<int>(a - b) < 0; }
// Takes a waiter off its watch's list.
void leave_watch(Waiter* w) noexcept;

void on_watch(evutil_socket_t fd, short what, void* arg) noexcept;

// wait_for() through the fd's watch for `what` (EV_READ or EV_WRITE).
WaitResult wait_watched(int fd, short what, double timeout) noexcept;

}  // namespace syncless::io
