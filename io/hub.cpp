#include "hub.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "dns_channel.hpp"
#include "fd_watch.hpp"
#include "waiter.hpp"
#include "waker.hpp"

namespace syncless::io {

using namespace stackless_face;

namespace {

SYNCLESS_STATIC_TLS thread_local Hub* this_hub = nullptr;

std::vector<Hub*> live_hubs;  // every thread's, touched with the GIL

// signal.set_wakeup_fd(fd) in the main thread, unless the program (asyncio,
// say) has its own: then signals wait for the next Python code to run.
bool take_signal_wakeup(int fd) noexcept {
    Ref signal_module = Ref::steal(PyImport_ImportModule("signal"));
    if (!signal_module) {
        return false;
    }
    Ref old = Ref::steal(PyObject_CallMethod(signal_module.get(), "set_wakeup_fd", "i", fd));
    if (!old) {
        PyErr_Clear();  // ValueError: not the main thread
        return false;
    }
    long previous = PyLong_AsLong(old.get());
    if (previous != -1) {
        Ref back = Ref::steal(
            PyObject_CallMethod(signal_module.get(), "set_wakeup_fd", "l", previous));
        PyErr_Clear();
        return false;
    }
    return true;
}

unsigned long main_thread_ident() noexcept {
    Ref threading = Ref::steal(PyImport_ImportModule("threading"));
    Ref main = threading ? Ref::steal(PyObject_CallMethod(threading.get(), "main_thread", nullptr))
                         : Ref();
    Ref ident = main ? Ref::steal(PyObject_GetAttrString(main.get(), "ident")) : Ref();
    unsigned long value = ident ? PyLong_AsUnsignedLong(ident.get()) : 0;
    PyErr_Clear();
    return value;
}

void drain(int fd) noexcept {
    char buffer[256];
    while (read(fd, buffer, sizeof buffer) > 0) {
    }
}

}  // namespace

Hub* Hub::if_any() noexcept { return this_hub; }

bool Hub::is_live(const Hub* hub) noexcept {
    return std::find(live_hubs.begin(), live_hubs.end(), hub) != live_hubs.end();
}

void Hub::on_thread_end(PyObject* capsule) noexcept {
    auto* hub = static_cast<Hub*>(PyCapsule_GetPointer(capsule, "syncless.hub_owner"));
    if (hub != nullptr && hub == this_hub) {
        hub->end_of_thread();
    }
}

void Hub::end_of_thread() noexcept {
    if (waiting_ != 0 || !DnsChannel::end_of_thread()) {
        return;  // kept (leaked): events still point at parked stacks or records
    }
    for (FdWatch*& watch : watches_) {
        if (watch != nullptr) {
            event_del(&watch->ev);
            delete watch;
            watch = nullptr;
        }
    }
    event_free(thread_event_);
    close(thread_fd_);
    event_free(doorbell_event_);  // the thread's state owns (and closes) the doorbell
    event_base_free(base_);  // closes the epoll fd and its timerfd
    posted_.clear();
    tasklet_.reset();  // suspended in its loop: its stack goes back to the pool
    live_hubs.erase(std::find(live_hubs.begin(), live_hubs.end(), this));
    this_hub = nullptr;
    delete this;
}

Hub* Hub::for_this_thread() noexcept {
    if (this_hub != nullptr) {
        return this_hub;
    }
    // Lives as long as the thread's core: parked tasklets point into it.
    auto* hub = new (std::nothrow) Hub();
    if (hub == nullptr) {
        PyErr_NoMemory();
        return nullptr;
    }
    if (!hub->init()) {
        return nullptr;  // leaked on purpose: a half-made base may hold events
    }
    this_hub = hub;
    live_hubs.push_back(hub);
    return hub;
}

namespace {

// libevent reports an fd closed behind its back (epoll_ctl EBADF) as a
// warning on stderr; waits check their fds themselves, so only errors show.
void log_libevent(int severity, const char* message) noexcept {
    if (severity >= EVENT_LOG_ERR) {
        std::fprintf(stderr, "syncless: libevent: %s\n", message);
    }
}

}  // namespace

bool Hub::init() noexcept {
    event_set_log_callback(&log_libevent);
    StacklessThread* ts = this_thread();
    if (ts == nullptr) {
        return false;
    }
    event_config* config = event_config_new();
    if (config == nullptr) {
        PyErr_NoMemory();
        return false;
    }
    // No epoll changelist: it defers a delete past the close() that follows
    // it, and a dup of the fd then keeps a ghost registration that makes
    // epoll_wait spin. (Sockets keep persistent watches, so changes are
    // rare anyway.) Without a precise timer libevent reads
    // CLOCK_MONOTONIC_COARSE, whose 4 ms tick turned sleep(0.001) into 4 ms.
    event_config_set_flag(config, EVENT_BASE_FLAG_NOLOCK | EVENT_BASE_FLAG_IGNORE_ENV |
                                      EVENT_BASE_FLAG_PRECISE_TIMER);
    base_ = event_base_new_with_config(config);
    event_config_free(config);
    if (base_ == nullptr) {
        PyErr_SetString(PyExc_OSError, "libevent: cannot create an event base");
        return false;
    }
    thread_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (thread_fd_ < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return false;
    }
    thread_event_ = event_new(base_, thread_fd_, EV_READ | EV_PERSIST, &on_thread_fd, this);
    if (thread_event_ == nullptr || event_add(thread_event_, nullptr) < 0) {
        PyErr_SetString(PyExc_OSError, "libevent: cannot watch the thread wake-up fd");
        return false;
    }
    int doorbell = doorbell_fd(ts);
    if (doorbell < 0) {
        return false;
    }
    doorbell_event_ = event_new(base_, doorbell, EV_READ | EV_PERSIST, &on_doorbell, this);
    if (doorbell_event_ == nullptr || event_add(doorbell_event_, nullptr) < 0) {
        PyErr_SetString(PyExc_OSError, "libevent: cannot watch the thread's doorbell");
        return false;
    }
    // Signals reach Python handlers in the main thread only.
    if (PyThread_get_thread_ident() == main_thread_ident() &&
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, signal_fds_) == 0) {
        if (take_signal_wakeup(signal_fds_[1])) {
            signal_event_ =
                event_new(base_, signal_fds_[0], EV_READ | EV_PERSIST, &on_signal_fd, this);
            if (signal_event_ != nullptr) {
                event_add(signal_event_, nullptr);
            }
        } else {
            close(signal_fds_[0]);
            close(signal_fds_[1]);
            signal_fds_[0] = signal_fds_[1] = -1;
        }
    }

    static PyMethodDef loop_def = {"syncless_hub", reinterpret_cast<PyCFunction>(&loop_entry),
                                   METH_NOARGS, "The event loop of this thread's hub."};
    Ref capsule = Ref::steal(PyCapsule_New(this, "syncless.hub", nullptr));
    if (!capsule) {
        return false;
    }
    Ref func = Ref::steal(PyCFunction_New(&loop_def, capsule.get()));
    if (!func) {
        return false;
    }
    // Bound and set up like tasklet(func)(), then taken out of the ring:
    // park() puts it back when the first wait needs it.
    Ref tasklet =
        Ref::steal(PyObject_CallOneArg(reinterpret_cast<PyObject*>(&Tasklet_Type), func.get()));
    if (!tasklet) {
        return false;
    }
    Ref setup = Ref::steal(PyObject_CallNoArgs(tasklet.get()));
    if (!setup) {
        return false;
    }
    Ref held = ring_remove(ts, reinterpret_cast<Tasklet*>(tasklet.get()));
    reinterpret_cast<Tasklet*>(tasklet.get())->is_hub = true;
    tasklet_ = std::move(tasklet);
    // The main thread's hub lasts as long as the process; another thread's
    // goes with the thread (its state dict is cleared as it ends).
    PyObject* dict = PyThreadState_GetDict();
    if (dict != nullptr && PyThread_get_thread_ident() != main_thread_ident()) {
        Ref owner = Ref::steal(PyCapsule_New(this, "syncless.hub_owner", &on_thread_end));
        if (!owner || PyDict_SetItemString(dict, "syncless.hub", owner.get()) < 0) {
            return false;
        }
    }
    return true;
}

PyObject* Hub::loop_entry(PyObject* capsule, PyObject*) noexcept {
    auto* hub = static_cast<Hub*>(PyCapsule_GetPointer(capsule, "syncless.hub"));
    StacklessThread* ts = this_thread();
    if (hub == nullptr || ts == nullptr) {
        return nullptr;
    }
    hub->loop(ts);
    Py_RETURN_NONE;
}

void Hub::loop(StacklessThread* ts) noexcept {
    Tasklet* self = tasklet();
    for (;;) {
        if (waiting_ == 0) {
            leave_ring(ts);
            continue;
        }
        // Block only when nothing else can run; otherwise one pass.
        cursor_ = self;
        if (ts->runcount > 1) {
            event_base_loop(base_, EVLOOP_NONBLOCK);
        } else {
            // Other threads (the thread pool) run while this one blocks; the
            // first callback takes the GIL back. One that makes a tasklet of
            // this thread runnable meanwhile rings the doorbell.
            ts->sleep = StacklessThread::Sleep::in_hub;
            released_ = PyEval_SaveThread();
            event_base_loop(base_, EVLOOP_ONCE);
            hold_gil();
            ts->sleep = StacklessThread::Sleep::awake;
        }
        cursor_ = nullptr;
        if (signalled_) {
            signalled_ = false;
            if (PyErr_CheckSignals() < 0) {
                deliver_to_main(ts);
            }
        }
        Ref value = Ref::steal(schedule_task(ts, self, self->next));
        if (!value) {
            deliver_to_main(ts);
        }
    }
}

// Nothing waits: float until park() brings the hub back. If that empties
// the ring, the watchdog runs; one blocked on a channel can only be woken by
// another thread (wait_for_other_threads()), else never.
void Hub::leave_ring(StacklessThread* ts) noexcept {
    Tasklet* self = tasklet();
    Ref held = ring_remove(ts, self);
    Tasklet* next = ts->head;
    if (next == nullptr) {
        next = wait_for_other_threads(ts);
    }
    if (next == nullptr) {
        next = watchdog(ts);
        if (next->blocked != 0) {
            PyErr_SetString(PyExc_RuntimeError,
                            "Deadlock: the last runnable tasklet cannot be blocked.");
            Ref bomb = bomb_from_error();
            if (bomb) {
                next->tempval = std::move(bomb);
            }
        }
    }
    Ref value = Ref::steal(schedule_task(ts, self, next));
    if (!value) {
        deliver_to_main(ts);
    }
}

void Hub::leave_ring_now() noexcept {
    Tasklet* self = tasklet();
    StacklessThread* ts = self->thread;
    if (self->next != nullptr && ts != nullptr && ts->current != self) {
        Ref held = ring_remove(ts, self);
    }
}

// An exception reached the hub (a signal handler raised, say
// KeyboardInterrupt): the main tasklet gets it, next. TaskletExit (someone
// killed the hub) is dropped: the hub outlives its thread's tasklets.
void Hub::deliver_to_main(StacklessThread* ts) noexcept {
    if (PyErr_ExceptionMatches(PyExc_TaskletExit)) {
        PyErr_Clear();
        return;
    }
    Ref bomb = bomb_from_error();
    if (!bomb) {
        PyErr_WriteUnraisable(nullptr);
        return;
    }
    auto* main = reinterpret_cast<Tasklet*>(ts->main.get());
    main->tempval = std::move(bomb);
    Tasklet* self = tasklet();
    if (main->blocked != 0) {
        Ref held = channel_unlink(main);
    }
    if (main->next == nullptr) {
        if (self->next != nullptr) {
            ring_insert_after(ts, self, main);
        } else {
            ring_insert(ts, main);
        }
    }
}

PyObject* Hub::park(StacklessThread* ts) noexcept {
    Tasklet* me = ts->current;
    Tasklet* hub = tasklet();
    if (me == hub) {
        PyErr_SetString(PyExc_RuntimeError,
                        "cannot block in the hub (a signal handler or event callback waited)");
        return nullptr;
    }
    if (hub->next == nullptr) {
        ring_insert(ts, hub);
    }
    // The ring's reference may be the only one: it stays until me runs again.
    Ref held = me->next != nullptr ? ring_remove(ts, me) : Ref::borrow(reinterpret_cast<PyObject*>(me));
    me->tempval = Ref::borrow(Py_None);
    // A greenlet running inside `me` may be what waits: the switch suspends
    // the tasklet with it, and the wake-up resumes it.
    return schedule_task(ts, me, ts->head);
}

void Hub::wake(Tasklet* t) noexcept {
    if (t->next != nullptr || t->blocked != 0 || !t->alive) {
        return;  // already runnable (insert(), kill()) or gone
    }
    StacklessThread* ts = t->thread;
    if (cursor_ != nullptr && cursor_->next != nullptr) {
        ring_insert_after(ts, cursor_, t);
        cursor_ = t;
    } else {
        ring_insert(ts, t);
    }
}

void Hub::add_fd_waiter(Waiter* w) noexcept {
    auto index = static_cast<std::size_t>(w->fd);
    if (index >= fd_waiters_.size()) {
        fd_waiters_.resize(index + 1 > 2 * fd_waiters_.size() ? index + 1 : 2 * fd_waiters_.size(),
                           nullptr);
    }
    Waiter*& head = fd_waiters_[index];
    w->fd_prev = nullptr;
    w->fd_next = head;
    if (head != nullptr) {
        head->fd_prev = w;
    }
    head = w;
}

void Hub::remove_fd_waiter(Waiter* w) noexcept {
    if (w->fd_prev != nullptr) {
        w->fd_prev->fd_next = w->fd_next;
    } else {
        fd_waiters_[static_cast<std::size_t>(w->fd)] = w->fd_next;
    }
    if (w->fd_next != nullptr) {
        w->fd_next->fd_prev = w->fd_prev;
    }
    w->fd_next = w->fd_prev = nullptr;
}

int Hub::cancel_everywhere(int fd, unsigned generation) noexcept {
    Hub* here = this_hub;
    for (Hub* hub : live_hubs) {
        if (hub != here && hub->has_interest(fd)) {
            hub->post_cancel(fd, generation);
        }
    }
    return here != nullptr ? here->cancel_fd_waiters(fd, generation) : 0;
}

// Another thread's hub state only changes with the GIL held (its loop takes
// the GIL before any callback), so it may be read here.
bool Hub::has_interest(int fd) const noexcept {
    auto index = static_cast<std::size_t>(fd);
    return (index < fd_waiters_.size() && fd_waiters_[index] != nullptr) ||
           (2 * index < watches_.size() && watches_[2 * index] != nullptr) ||
           (2 * index + 1 < watches_.size() && watches_[2 * index + 1] != nullptr);
}

int Hub::cancel_fd_waiters(int fd, unsigned generation) noexcept {
    if (fd < 0) {
        return 0;
    }
    auto index = static_cast<std::size_t>(fd);
    int count = 0;
    if (index < fd_waiters_.size()) {
        for (Waiter* w = fd_waiters_[index]; w != nullptr; w = w->fd_next) {
            if (!w->closed && older(w->generation, generation)) {
                w->closed = true;
                // The fd may be reused at once: its registrations go now.
                event_del(&w->ev);
                leave_watch(w);
                wake(w->tasklet);
                ++count;
            }
        }
    }
    for (std::size_t slot = 2 * index; slot < 2 * index + 2 && slot < watches_.size(); ++slot) {
        FdWatch* watch = watches_[slot];
        if (watch != nullptr && older(watch->generation, generation)) {
            while (watch->waiters != nullptr) {
                leave_watch(watch->waiters);
            }
            event_del(&watch->ev);
            delete watch;
            watches_[slot] = nullptr;
        }
    }
    return count;
}

void Hub::post_cancel(int fd, unsigned generation) noexcept {
    {
        std::lock_guard<std::mutex> guard(posted_lock_);
        posted_cancels_.emplace_back(fd, generation);
    }
    wake_loop_from_thread();
}

void Hub::wake_loop_from_thread() noexcept {
    std::uint64_t one = 1;
    ssize_t written = write(thread_fd_, &one, sizeof one);
    (void)written;  // EAGAIN: the counter is already non-zero, the loop wakes anyway
}

int Hub::stale_watches() const noexcept {
    int count = 0;
    for (std::size_t slot = 0; slot < watches_.size(); ++slot) {
        if (watches_[slot] != nullptr && watches_[slot]->added &&
            fcntl(static_cast<int>(slot / 2), F_GETFD) < 0) {
            ++count;
        }
    }
    return count;
}

FdWatch* Hub::watch(int fd, short what) noexcept {
    std::size_t slot = 2 * static_cast<std::size_t>(fd) + (what == EV_WRITE ? 1 : 0);
    if (slot >= watches_.size()) {
        watches_.resize(slot + 1 > 2 * watches_.size() ? slot + 1 : 2 * watches_.size(), nullptr);
    }
    FdWatch*& watch = watches_[slot];
    if (watch == nullptr) {
        watch = new (std::nothrow) FdWatch();
        if (watch == nullptr) {
            PyErr_NoMemory();
            return nullptr;
        }
        watch->hub = this;
        event_assign(&watch->ev, base_, fd, static_cast<short>(what | EV_PERSIST), &on_watch,
                     watch);
    }
    return watch;
}

void Hub::post_from_thread(Waker* w) noexcept {
    {
        std::lock_guard<std::mutex> guard(posted_lock_);
        posted_.push_back(Ref::borrow(reinterpret_cast<PyObject*>(w)));
    }
    wake_loop_from_thread();
}

void Hub::on_thread_fd(evutil_socket_t fd, short, void* arg) noexcept {
    auto* hub = static_cast<Hub*>(arg);
    hub->hold_gil();
    std::uint64_t count;
    ssize_t got = read(fd, &count, sizeof count);
    (void)got;
    std::vector<Ref> posted;
    std::vector<std::pair<int, unsigned>> cancels;
    {
        std::lock_guard<std::mutex> guard(hub->posted_lock_);
        posted.swap(hub->posted_);
        cancels.swap(hub->posted_cancels_);
    }
    for (Ref& w : posted) {
        waker_deliver(reinterpret_cast<Waker*>(w.get()));
    }
    for (auto [fd, generation] : cancels) {
        hub->cancel_fd_waiters(fd, generation);
    }
}

void Hub::on_doorbell(evutil_socket_t, short, void* arg) noexcept {
    auto* hub = static_cast<Hub*>(arg);
    hub->hold_gil();
    drain_doorbell(hub->tasklet()->thread);
}

void Hub::on_signal_fd(evutil_socket_t fd, short, void* arg) noexcept {
    auto* hub = static_cast<Hub*>(arg);
    hub->hold_gil();
    drain(fd);
    hub->signalled_ = true;
    event_base_loopbreak(hub->base_);
}

bool Hub::reinit() noexcept {
    if (event_reinit(base_) < 0) {
        PyErr_SetString(PyExc_OSError, "libevent: cannot reinitialise the event base after fork");
        return false;
    }
    // The parent's eventfd and wake-up pair would carry its wake-ups here.
    int fresh = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fresh < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return false;
    }
    event_del(thread_event_);
    close(thread_fd_);
    thread_fd_ = fresh;
    event_assign(thread_event_, base_, thread_fd_, EV_READ | EV_PERSIST, &on_thread_fd, this);
    event_add(thread_event_, nullptr);
    event_del(doorbell_event_);
    int doorbell = doorbell_fd(tasklet()->thread);  // the child's own, made anew
    if (doorbell < 0) {
        return false;
    }
    event_assign(doorbell_event_, base_, doorbell, EV_READ | EV_PERSIST, &on_doorbell, this);
    event_add(doorbell_event_, nullptr);
    posted_.clear();
    if (signal_event_ != nullptr) {
        int pair[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) == 0) {
            event_del(signal_event_);
            close(signal_fds_[0]);
            close(signal_fds_[1]);
            signal_fds_[0] = pair[0];
            signal_fds_[1] = pair[1];
            Ref signal_module = Ref::steal(PyImport_ImportModule("signal"));
            Ref old = signal_module ? Ref::steal(PyObject_CallMethod(
                                          signal_module.get(), "set_wakeup_fd", "i", pair[1]))
                                    : Ref();
            PyErr_Clear();
            event_assign(signal_event_, base_, pair[0], EV_READ | EV_PERSIST, &on_signal_fd, this);
            event_add(signal_event_, nullptr);
        }
    }
    return true;
}

}  // namespace syncless::io
