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

// A socket closed in another thread cannot reach this thread's hub (its
// loop may run without the GIL): the close bumps the fd's generation
// instead (GIL held), and a watch from an older generation is re-added.
void bump_fd_generation(int fd) noexcept;

void on_watch(evutil_socket_t fd, short what, void* arg) noexcept;

// wait_for() through the fd's watch for `what` (EV_READ or EV_WRITE).
WaitResult wait_watched(int fd, short what, double timeout) noexcept;

}  // namespace syncless::io
