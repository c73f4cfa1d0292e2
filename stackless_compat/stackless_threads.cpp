// Tasklets and channels across OS threads (spec §2.2 last row, §2.3, §2.9):
// making a tasklet of another thread runnable there, the doorbell that wakes
// a thread when that happens, and the wait of a thread whose ring is empty
// while other threads may still give it work (Stackless's
// schedule_task_block / check_for_deadlock / slp_thread_unblock).
//
// Every thread's ring and channel queues are touched with the GIL held, by
// the owner and by other threads alike. The owner lets the GIL go only while
// it sleeps (here or in its hub's epoll_wait) and wherever Python code runs
// (callbacks, finalizers, the eval loop's periodic drop). At all those
// points its ring is a consistent ring; `current` may be out of it (blocked,
// parked, or a tasklet that just ended). Other threads therefore only ever
// add to a ring (never remove from it; they take a tasklet out of a channel
// queue only to make it runnable), link after `current` only while
// `current` is in the ring, and read `current`, `head` and `sleep` but never
// write them: whatever the owner held on to (its `next`, the head it is
// about to switch to) stays in the ring.
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>

#include "../scheduler/gil.hpp"
#include "stackless_object.hpp"

namespace syncless::stackless_face {

namespace {

// A sleeping thread wakes this often to look again at the other threads:
// one that never used stackless ends without ringing anybody.
constexpr int recheck_ms = 100;

// A thread that uses stackless and may run its tasklets: it does not wait
// in wait_for_other_threads(), or something woke it and it will run soon.
bool may_run(const StacklessThread* other) noexcept {
    return other->sleep != StacklessThread::Sleep::waiting || other->head != nullptr;
}

struct Verdict {
    bool may_help = false;
    bool failed = false;
};

// One threading.Thread `thread`: whether it may still help `ts`. While it
// lives it counts if it uses stackless and does not wait itself; one that
// has not used stackless yet counts unless it is a daemon (the process
// waits for the others anyway, and daemons that never touch stackless are
// background services, such as coio's thread pool).
Verdict judge(PyObject* thread, StacklessThread* ts, std::vector<unsigned long>& seen) noexcept {
    Ref ident = Ref::steal(PyObject_GetAttrString(thread, "ident"));
    Ref daemon = ident ? Ref::steal(PyObject_GetAttrString(thread, "daemon")) : Ref();
    if (!daemon) {
        return {false, true};
    }
    if (ident.get() == Py_None) {
        return {daemon.get() != Py_True, false};  // start() called, not running yet
    }
    unsigned long id = PyLong_AsUnsignedLong(ident.get());
    if (id == static_cast<unsigned long>(-1) && PyErr_Occurred()) {
        return {false, true};
    }
    if (id == ts->thread_id) {
        return {};
    }
    seen.push_back(id);
    Ref alive = Ref::steal(PyObject_CallMethod(thread, "is_alive", nullptr));
    if (!alive) {
        return {false, true};
    }
    if (alive.get() != Py_True) {
        return {};  // the main thread once the interpreter shuts down
    }
    if (StacklessThread* state = find_thread(id)) {
        return {may_run(state), false};
    }
    return {daemon.get() != Py_True, false};
}

// Threads Python's threading module knows: 1 if one may help `ts`, 0 if
// none, -1 with an exception. `seen` gets the ids it judged.
int threading_may_help(StacklessThread* ts, std::vector<unsigned long>& seen) noexcept {
    Ref threading = Ref::steal(PyImport_GetModule(Ref::steal(
        PyUnicode_FromString("threading")).get()));
    if (!threading) {
        return PyErr_Occurred() ? -1 : 0;  // not imported: it started no thread
    }
    Ref threads = Ref::steal(PyObject_CallMethod(threading.get(), "enumerate", nullptr));
    Ref list = threads ? Ref::steal(PySequence_List(threads.get())) : Ref();
    if (!list) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list.get()); ++i) {
        Verdict v = judge(PyList_GET_ITEM(list.get(), i), ts, seen);
        if (v.failed || v.may_help) {
            return v.failed ? -1 : 1;
        }
    }
    return 0;
}

// Stackless's check_for_deadlock, inverted: 1 if another thread may still
// make a tasklet of `ts` runnable, 0 if none can, -1 with an exception.
// Threads threading does not know (started by _thread or C) count while
// they have a Python thread state, use stackless and do not wait themselves
// (the interpreter's list, not ours: after fork() it holds this thread only;
// a thread state is unlinked with the GIL held, and a new one is linked at
// the head, so walking from the head with the GIL sees a well-formed list).
int others_may_help(StacklessThread* ts) noexcept {
    if (interpreter_finalizing()) {
        return 0;
    }
    std::vector<unsigned long> seen;
    int verdict = threading_may_help(ts, seen);
    if (verdict != 0) {
        return verdict;
    }
    PyThreadState* me = PyThreadState_Get();
    for (PyThreadState* t = PyInterpreterState_ThreadHead(PyInterpreterState_Get()); t != nullptr;
         t = PyThreadState_Next(t)) {
        if (t == me || std::find(seen.begin(), seen.end(), t->thread_id) != seen.end()) {
            continue;
        }
        StacklessThread* other = find_thread(t->thread_id);
        if (other != nullptr && may_run(other)) {
            return 1;
        }
    }
    return 0;
}

// Sleeps on the doorbell, GIL released, for at most recheck_ms; a signal
// ends it early (EINTR), so Ctrl-C reaches the main thread at once.
void sleep_on(int fd) noexcept {
    pollfd p{fd, POLLIN, 0};
    GilReleased released;
    poll(&p, 1, recheck_ms);
}

enum class Outcome { slept, runnable, nobody, failed };

// One look at the other threads and, if one may help, one sleep.
Outcome look_and_sleep(StacklessThread* ts) noexcept {
    if (ts->head != nullptr) {
        return Outcome::runnable;
    }
    int help = others_may_help(ts);
    if (help <= 0) {
        return help < 0 ? Outcome::failed : Outcome::nobody;
    }
    if (ts->head != nullptr) {
        return Outcome::runnable;  // made runnable while threading's code ran
    }
    int fd = doorbell_fd(ts);
    if (fd < 0) {
        return Outcome::failed;
    }
    sleep_on(fd);
    drain_doorbell(ts);
    return Outcome::slept;
}

// Until the ring has a tasklet again, no other thread may help any more, or
// a signal handler raises. `sleep` says "waiting" during the looks too: a
// thread that makes one of ours runnable meanwhile rings the doorbell, and
// the sleep that follows returns at once.
Outcome wait(StacklessThread* ts) noexcept {
    for (;;) {
        // Signal handlers run as "waiting" too: they may not switch (see
        // thread_for_switch()), since the tasklet here is in no ring.
        ts->sleep = StacklessThread::Sleep::waiting;
        Outcome outcome =
            PyErr_CheckSignals() < 0 ? Outcome::failed : look_and_sleep(ts);
        ts->sleep = StacklessThread::Sleep::awake;
        if (outcome == Outcome::failed) {
            return outcome;
        }
        if (ts->head != nullptr) {
            return Outcome::runnable;
        }
        if (outcome == Outcome::nobody) {
            return outcome;
        }
    }
}

}  // namespace

StacklessThread* live_thread_of(Tasklet* t) noexcept {
    if (t->thread == nullptr || t->thread->exited.load()) {
        PyErr_SetString(PyExc_RuntimeError, "tasklet has no thread");
        return nullptr;
    }
    return t->thread;
}

void make_runnable_in_its_thread(Tasklet* t, bool next_up) noexcept {
    StacklessThread* owner = t->thread;
    Ref held;
    if (t->blocked != 0) {
        held = channel_unlink(t);
    } else if (t->next != nullptr) {
        return;
    }
    Tasklet* running = owner->current;
    if (next_up && running->next != nullptr && running->blocked == 0) {
        ring_insert_after(owner, running, t);
    } else {
        ring_insert(owner, t);
    }
    ring_doorbell(owner);
}

int doorbell_fd(StacklessThread* ts) noexcept {
    pid_t pid = getpid();
    if (ts->doorbell >= 0 && ts->doorbell_pid == pid) {
        return ts->doorbell;
    }
    if (ts->doorbell >= 0) {
        close(ts->doorbell);  // the parent's, shared with it after fork()
    }
    ts->doorbell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ts->doorbell < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    ts->doorbell_pid = pid;
    return ts->doorbell;
}

void ring_doorbell(StacklessThread* ts) noexcept {
    if (ts->sleep != StacklessThread::Sleep::awake && ts->doorbell >= 0) {
        std::uint64_t one = 1;
        ssize_t written = write(ts->doorbell, &one, sizeof one);
        (void)written;  // EAGAIN: the counter is full, the sleeper wakes anyway
    }
}

void drain_doorbell(StacklessThread* ts) noexcept {
    std::uint64_t count;
    ssize_t got = read(ts->doorbell, &count, sizeof count);
    (void)got;  // EAGAIN: woken by the timeout or a signal
}

void thread_ended(StacklessThread* ts) noexcept {
    if (ts->doorbell >= 0) {
        close(ts->doorbell);
        ts->doorbell = -1;
    }
    for (StacklessThread* other : thread_states()) {
        if (other->sleep == StacklessThread::Sleep::waiting) {
            ring_doorbell(other);
        }
    }
}

Tasklet* wait_for_other_threads_slow(StacklessThread* ts) noexcept {
    switch (wait(ts)) {
    case Outcome::runnable:
        return ts->head;
    case Outcome::failed:
        break;
    default:
        return nullptr;
    }
    // A signal handler raised (Ctrl-C), or the wait itself failed: main gets
    // the exception, as from the hub.
    Ref bomb = bomb_from_error();
    if (!bomb) {
        PyErr_WriteUnraisable(nullptr);
        return nullptr;
    }
    auto* main = reinterpret_cast<Tasklet*>(ts->main.get());
    main->tempval = std::move(bomb);
    return main;
}

}  // namespace syncless::stackless_face
