// The hub: one per thread, a tasklet that runs the libevent loop.
//
// It is in the run ring only while some coroutine waits on I/O or a timer,
// so a program without I/O sees plain Stackless scheduling. While it is in
// the ring it polls without blocking once per round (a yield loop does not
// starve I/O) and blocks only when it is the one runnable tasklet. Event
// callbacks run no user code: they make the waiting tasklets runnable, right
// after the hub, so those woken by I/O run before the rest of the round.
#pragma once
#include <event2/event.h>

#include <mutex>
#include <utility>
#include <vector>

#include "../scheduler/gil.hpp"
#include "../stackless_compat/stackless_object.hpp"

namespace syncless::io {

using stackless_face::StacklessThread;
using stackless_face::Tasklet;

struct Waiter;
struct Waker;
struct FdWatch;

class Hub {
public:
    // The calling thread's hub, made on first use; null with an exception set
    // when it cannot be made.
    static Hub* for_this_thread() noexcept;
    static Hub* if_any() noexcept;
    // Whether `hub` still exists (its thread may have ended); GIL held.
    static bool is_live(const Hub* hub) noexcept;

    event_base* base() const noexcept { return base_; }
    Tasklet* tasklet() const noexcept { return reinterpret_cast<Tasklet*>(tasklet_.get()); }
    // Waits that hold a registration now (the leak count tests read).
    long waiting() const noexcept { return waiting_; }

    // Parks the running tasklet (which has registered what wakes it) until
    // something makes it runnable again. Returns what schedule_task returns:
    // a new reference, or null with the exception that woke it.
    PyObject* park(StacklessThread* ts) noexcept;
    // Makes a parked tasklet runnable; from an event callback, after the
    // ones this loop pass woke before it.
    void wake(Tasklet* t) noexcept;

    // Every event callback calls this first: the loop blocks without the GIL.
    void hold_gil() noexcept {
        if (released_ != nullptr) {
            park_if_finalizing();
            PyEval_RestoreThread(released_);
            released_ = nullptr;
        }
    }

    void add_fd_waiter(Waiter* w) noexcept;
    void remove_fd_waiter(Waiter* w) noexcept;
    // The fd is about to close (its generation is now `generation`): every
    // thread's waiters on it from before wake with the fd-closed error and
    // its older watches go. This thread's at once; other threads' hubs that
    // hold any through a message their loop reads. Returns how many woke here.
    static int cancel_everywhere(int fd, unsigned generation) noexcept;

    // The fd's persistent watch for `what` (EV_READ or EV_WRITE), made on
    // first use; null with MemoryError.
    FdWatch* watch(int fd, short what) noexcept;
    // Watches still registered for fds that are closed now: leaks.
    int stale_watches() const noexcept;

    // A waker of another thread fired (GIL held): queue it for this hub.
    void post_from_thread(Waker* w) noexcept;
    void post_cancel(int fd, unsigned generation) noexcept;

    // After fork(), in the child: the epoll set is shared with the parent.
    bool reinit() noexcept;

    // Waits count themselves in and out here; when the last one ends the
    // hub leaves the run ring at once, so getruncount() counts it exactly
    // while something waits.
    void count_wait(int delta) noexcept {
        waiting_ += delta;
        if (waiting_ == 0) {
            leave_ring_now();
        }
    }

private:
    Hub() noexcept = default;
    // A thread other than the main one ends (its state dict is cleared):
    // the hub frees its base and fds, unless a wait or lookup still points
    // into it.
    void end_of_thread() noexcept;
    static void on_thread_end(PyObject* capsule) noexcept;
    bool init() noexcept;
    static PyObject* loop_entry(PyObject* self, PyObject*) noexcept;
    void loop(StacklessThread* ts) noexcept;
    void deliver_to_main(StacklessThread* ts) noexcept;
    void leave_ring(StacklessThread* ts) noexcept;
    void leave_ring_now() noexcept;
    int cancel_fd_waiters(int fd, unsigned generation) noexcept;
    bool has_interest(int fd) const noexcept;
    void wake_loop_from_thread() noexcept;
    static void on_signal_fd(evutil_socket_t fd, short, void* arg) noexcept;
    static void on_thread_fd(evutil_socket_t fd, short, void* arg) noexcept;
    static void on_doorbell(evutil_socket_t fd, short, void* arg) noexcept;

    event_base* base_ = nullptr;
    Ref tasklet_;
    long waiting_ = 0;
    Tasklet* cursor_ = nullptr;         // where the next woken tasklet goes
    PyThreadState* released_ = nullptr; // the GIL is released while blocked
    std::vector<Waiter*> fd_waiters_;   // per fd, a list through Waiter::fd_next
    std::vector<FdWatch*> watches_;     // [2 * fd] read, [2 * fd + 1] write
    // Python's signal handler writes to signal_fds_[1] (set_wakeup_fd), so
    // a blocked loop returns and the hub runs the Python-level handlers.
    int signal_fds_[2] = {-1, -1};
    event* signal_event_ = nullptr;
    bool signalled_ = false;
    // Wakers fired in other threads; thread_fd_ wakes this loop.
    std::mutex posted_lock_;
    std::vector<Ref> posted_;
    std::vector<std::pair<int, unsigned>> posted_cancels_;  // (fd, generation)
    int thread_fd_ = -1;
    event* thread_event_ = nullptr;
    // The thread's doorbell (stackless_threads.cpp): another thread made one
    // of this thread's tasklets runnable while the loop blocks.
    event* doorbell_event_ = nullptr;
};

}  // namespace syncless::io
