// The stackless face's objects: tasklet, channel and bomb instance layouts,
// and the per-thread scheduler state they share.
#pragma once
#include <Python.h>
#include <cstddef>
#include <atomic>
#include <cstdint>
#include <new>
#include <vector>

#include "../scheduler/coroutine.hpp"
#include "../scheduler/py_ref.hpp"

namespace syncless::stackless_face {

struct StacklessThread;
struct Channel;
struct Slice;

Coroutine* tasklet_body(Coroutine* co) noexcept;

// A trace or profile function as CPython keeps it: the C function and its
// object (sys.settrace(f) means CPython's trampoline with f).
struct TraceHook {
    Py_tracefunc func = nullptr;
    Ref obj;
    bool operator==(const TraceHook& o) const noexcept {
        return func == o.func && obj.get() == o.obj.get();
    }
};

// A tasklet. `next`/`prev` link it into exactly one ring: its thread's run
// ring (runnable) or a channel's queue (blocked); both are null when it is in
// neither (paused, or not alive). The ring or queue holds one reference.
struct Tasklet {
    PyObject ob_base;
    PyObject* weakreflist;
    PyObject* dict;
    Coroutine coroutine;           // unused by main tasklets (the thread's own stack)
    // The root of the tasklet's family: &coroutine, or the thread's main
    // coroutine. Switching to it resumes whichever of the tasklet's
    // greenlets ran last in it.
    Coroutine* co;
    StacklessThread* thread;       // the thread it belongs to
    Tasklet* next;
    Tasklet* prev;
    Channel* channel;              // the channel it is blocked on (borrowed)
    int blocked;                   // -1 receiving, +1 sending, 0 not blocked
    bool is_main;
    bool alive;                    // has a "frame": set up, not yet finished
    bool block_trap;
    bool atomic;                   // defers preemption (stackless_preempt.hpp)
    bool ignore_nesting;
    bool is_hub;                   // coio's event loop: no kill, throw, remove or bind
    bool threadblock;              // parked in run(threadblock=True)
    Ref tempval;                   // never null; None when empty
    Ref func;                      // what the first switch calls, with args/kwargs
    Ref args;
    Ref kwargs;
    Ref context;                   // contextvars context for its start (set by bind)
    // Its trace and profile functions and tracing depth while it does not
    // run; the running tasklet's are the thread's (stackless_tracing.cpp).
    TraceHook trace;
    TraceHook profile;
    int tracing;
    // While blocked in a channel method its Python caller called directly:
    // the end of that caller's value stack (the call's arguments point into
    // it). The collector may read that stack then: the call is in progress,
    // so every slot below holds a live reference (stackless_gc.cpp).
    PyObject* const* stack_top;
    Tasklet* live_next;            // the registry of started, unfinished tasklets
    Tasklet* live_prev;

    // tp_alloc zeroes the object; these construct and destroy the C++ members.
    void construct(bool main) noexcept {
        new (&coroutine) Coroutine(main ? nullptr : &tasklet_body);
        new (&tempval) Ref(Ref::borrow(Py_None));
        new (&func) Ref();
        new (&args) Ref();
        new (&kwargs) Ref();
        new (&context) Ref();
        new (&trace) TraceHook();
        new (&profile) TraceHook();
        co = &coroutine;
        is_main = main;
        coroutine.set_owner(this);
        coroutine.start_at_depth_zero();
    }
    void destroy() noexcept {
        tempval.~Ref();
        func.~Ref();
        args.~Ref();
        kwargs.~Ref();
        context.~Ref();
        trace.~TraceHook();
        profile.~TraceHook();
        coroutine.~Coroutine();
    }
};

// A channel: its queue of blocked tasklets is a ring through their
// next/prev, `head` the first (oldest) one.
struct Channel {
    PyObject ob_base;
    PyObject* weakreflist;
    PyObject* dict;
    Tasklet* head;
    Py_ssize_t balance;            // >0 senders waiting, <0 receivers waiting
    int preference;                // -1 prefer receiver, 1 prefer sender, 0 neither
    bool schedule_all;
    bool closing;
};

struct Bomb {
    PyObject ob_base;
    Ref type;
    Ref value;
    Ref traceback;
};

// Per-thread scheduler state. The run ring is circular through the
// tasklets' next/prev; `head` is the running tasklet whenever that one is
// runnable. Watchdogs are the tasklets parked in run(), innermost last.
struct StacklessThread {
    ThreadCore* core = nullptr;
    unsigned long thread_id = 0;       // PyThread_get_thread_ident()
    std::atomic<bool> exited{false};   // set (without the GIL) when the thread ends
    Ref main;                          // the main tasklet
    Tasklet* current = nullptr;        // the running tasklet
    Tasklet* head = nullptr;           // the run ring; null when empty
    Py_ssize_t runcount = 0;
    std::vector<Tasklet*> watchdogs;   // each one's run() call keeps it alive
    Ref del_post_switch;               // a tasklet's last reference, dropped by whoever runs next
    std::vector<Ref> doomed;           // unreachable tasklets to kill at the next safe switch
    long switch_trap = 0;              // >0: any switch raises RuntimeError("switch_trap")
    bool schedlock = false;            // the schedule callback runs
    bool chanlock = false;             // the channel callback runs
    // Preemption (stackless_preempt.hpp): every switch bumps `switches`
    // (single writer; the timer thread reads it); `soft_irq` asks the next
    // voluntary switch to go to the watchdog; `slice` is the run(timeout) in
    // force; `pending_irq` an interrupt that waits for atomic to end.
    std::atomic<std::uint64_t> switches{0};
    std::atomic<bool> soft_irq{false};
    Slice* slice = nullptr;
    bool pending_irq = false;
    // Threads (stackless_threads.cpp), with the GIL held like the ring: a
    // thread that makes one of this thread's tasklets runnable rings the
    // doorbell (an eventfd, made on first need) while `sleep` is not awake.
    enum class Sleep : unsigned char {
        awake,
        in_hub,   // the hub blocks in epoll, the doorbell among its fds
        waiting,  // in wait_for_other_threads(): can help nobody meanwhile
    };
    Sleep sleep = Sleep::awake;
    int doorbell = -1;
    long doorbell_pid = 0;             // the process it was made in
};

extern PyTypeObject Tasklet_Type;
extern PyTypeObject Channel_Type;
extern PyTypeObject Bomb_Type;
extern PyObject* PyExc_TaskletExit;

inline PyObject* as_object(Tasklet* t) noexcept { return reinterpret_cast<PyObject*>(t); }
inline PyObject* as_object(Channel* c) noexcept { return reinterpret_cast<PyObject*>(c); }
inline bool is_tasklet(PyObject* o) noexcept { return PyObject_TypeCheck(o, &Tasklet_Type); }
// Checked on every switch: the usual tempvals (a tasklet, None) answer
// without the subtype walk.
inline bool is_bomb(PyObject* o) noexcept {
    if (o == nullptr || o == Py_None || Py_IS_TYPE(o, &Tasklet_Type)) {
        return false;
    }
    return Py_IS_TYPE(o, &Bomb_Type) || PyType_IsSubtype(Py_TYPE(o), &Bomb_Type);
}

// --- bomb (stackless_bomb.cpp) ---
// A bomb of (type, value, traceback); null with an exception set on failure.
Ref make_bomb(PyObject* type, PyObject* value, PyObject* traceback) noexcept;
// A bomb of (cls, *rest) from args = (cls, *rest), as send_exception() and
// raise_exception() take them; TypeError naming `method` when cls is not an
// exception class.
Ref bomb_from_class_and_args(PyObject* args, const char* method) noexcept;
// The exception set now, taken into a bomb (the error is cleared).
Ref bomb_from_error() noexcept;
// A bomb with raise-statement semantics of (exc, val, tb), as throw() takes
// them; null with TypeError for bad arguments.
Ref bomb_from_raise_args(PyObject* exc, PyObject* val, PyObject* tb) noexcept;
// Sets the bomb's exception as the current one.
void bomb_explode(PyObject* bomb) noexcept;

// --- scheduler (stackless_scheduler.cpp) ---
// The calling thread's state, created with its main tasklet on first use;
// null with an exception set on failure.
StacklessThread* this_thread() noexcept;
// The calling thread's state if it exists; never creates it.
StacklessThread* this_thread_if_any() noexcept;
// The state of the live thread with that id, if it has one (GIL held).
StacklessThread* find_thread(unsigned long thread_id) noexcept;
// The calling thread's state for a switch of its current tasklet: as
// this_thread(), but null with RuntimeError while the schedule callback
// runs. Whichever greenlet runs in the current tasklet is suspended with it,
// and resumed with it (the core switches families, coroutine.hpp).
StacklessThread* thread_for_switch() noexcept;
// The same, for a wait that parks the current tasklet (coio).
StacklessThread* thread_for_wait() noexcept;
// A switch from here comes back safely: the running tasklet runs as the head
// of its ring (not blocked, finishing, or waiting for another thread while a
// finaliser or signal handler runs), outside the schedule callback and
// switch_trap, and is not the coio hub. (It may carry a greenlet.)
bool runs_as_ring_head(StacklessThread* ts) noexcept;

void ring_insert(StacklessThread* ts, Tasklet* t) noexcept;   // at the tail; takes a reference
// Right after `pos` (which is in the ring), so it runs before the rest.
void ring_insert_after(StacklessThread* ts, Tasklet* pos, Tasklet* t) noexcept;
Ref ring_remove(StacklessThread* ts, Tasklet* t) noexcept;    // returns the ring's reference
void channel_append(Channel* c, Tasklet* t, int dir) noexcept;  // takes a reference
Ref channel_unlink(Tasklet* t) noexcept;                       // returns the queue's reference

// The running coroutine's contextvars context (made and installed if it
// has none yet): a new reference, or null with an exception set.
Ref current_context() noexcept;
// Makes `context` (a reference taken) the running coroutine's context.
void install_context(Ref context) noexcept;

// Stackless's nesting_level: how often C code entered the interpreter again
// on the tasklet's stack below its own function (0 for a tasklet running or
// suspended in plain Python code; a __del__, an import, a sorted(key=)
// callback count one each). Always 0 for a main tasklet: its thread's code
// may have entered the interpreter any number of times before stackless.
int nesting_level(Tasklet* t) noexcept;
// Takes a tasklet's tempval (leaving None).
Ref claim_tempval(Tasklet* t) noexcept;
// The scheduler's one switch: makes `next` runnable (unblocking it from its
// channel if needed), makes it the ring head and switches to it; null `next`
// means the ring is empty (wake the watchdog, or raise the deadlock error in
// `prev`). Returns what `prev` claims from its tempval when it runs again (a
// bomb explodes): a new reference, or null with an exception set.
// A switch the tasklet did not choose (a channel's preference) is not
// `voluntary`: run(soft=True) does not interrupt there.
PyObject* schedule_task(StacklessThread* ts, Tasklet* prev, Tasklet* next,
                        bool voluntary = true) noexcept;
// The innermost run() caller, else main.
Tasklet* watchdog(StacklessThread* ts) noexcept;

// set_error_handler(): called with (type, value, tb) for exceptions escaping
// non-main tasklets; null when unset.
extern PyObject* error_handler;
// set_schedule_callback() / set_channel_callback(); null when unset.
extern PyObject* schedule_callback;
extern PyObject* channel_callback;
// Calls the schedule callback (if any) as cb(prev or None, next); its errors
// are reported as unraisable and cleared.
void notify_schedule(StacklessThread* ts, Tasklet* prev, Tasklet* next) noexcept;
// Null with RuntimeError while the schedule callback runs: the ring must not
// change under it.
bool check_not_in_callback(StacklessThread* ts) noexcept;

// The registry of tasklets that hold a C stack (started, not finished), all
// threads; linked and unlinked with the GIL held.
void live_link(Tasklet* t) noexcept;
void live_unlink(Tasklet* t) noexcept;
// New list of them (getuncollectables()).
PyObject* live_tasklets() noexcept;

// Every thread state made (the registry find_thread() searches).
const std::vector<StacklessThread*>& thread_states() noexcept;

// --- threads (stackless_threads.cpp) ---
// The thread the tasklet belongs to; null with RuntimeError "tasklet has no
// thread" once that thread ended.
StacklessThread* live_thread_of(Tasklet* t) noexcept;
// Makes `t`, alive and of another live thread, runnable there (out of its
// channel if blocked; right after that thread's running tasklet when
// `next_up`, else at the tail of its ring) and wakes that thread if it
// sleeps. No switch here: the caller runs on.
void make_runnable_in_its_thread(Tasklet* t, bool next_up) noexcept;
// The thread's doorbell, made on first use (and anew in a forked child);
// -1 with OSError set when it cannot be made.
int doorbell_fd(StacklessThread* ts) noexcept;
void ring_doorbell(StacklessThread* ts) noexcept;
void drain_doorbell(StacklessThread* ts) noexcept;
// The thread is ending (GIL held, its thread state being cleared): its
// doorbell goes, and sleeping threads look again whether anyone may help.
void thread_ended(StacklessThread* ts) noexcept;
// The ring is empty and the running tasklet does not go on (it blocked,
// ended, or is the hub leaving the ring). If the watchdog cannot run either
// (it is blocked, or parked in run(threadblock=True)) and another thread may
// still make one of ours runnable, sleeps with the GIL released until one
// does and returns the ring's head. Null: go on as with one thread (revive
// the watchdog or raise the deadlock errors). A failed wait (a signal
// handler raised) returns main with the exception as a bomb in its tempval.
Tasklet* wait_for_other_threads_slow(StacklessThread* ts) noexcept;
inline Tasklet* wait_for_other_threads(StacklessThread* ts) noexcept {
    Tasklet* w = watchdog(ts);
    bool floating = w->next == nullptr;
    return floating && !w->threadblock ? nullptr : wait_for_other_threads_slow(ts);
}

// --- tracing (stackless_tracing.cpp) ---
// At a switch from prev to next: prev's trace and profile functions go into
// prev (unless it finished), next's into the thread. The inline test keeps
// switches without any tracing at a few loads and one branch.
void switch_tracing_slow(Tasklet* prev, Tasklet* next, bool prev_finished) noexcept;
inline void switch_tracing(Tasklet* prev, Tasklet* next, bool prev_finished = false) noexcept {
    // Unchecked: PyThreadState_GET() is a checking function call outside
    // CPython itself.
#if PY_VERSION_HEX >= 0x030D0000
    PyThreadState* tstate = PyThreadState_GetUnchecked();
#else
    PyThreadState* tstate = _PyThreadState_UncheckedGet();
#endif
    if (tstate->c_tracefunc != nullptr || tstate->c_profilefunc != nullptr ||
        tstate->tracing != 0 || next->trace.func != nullptr || next->profile.func != nullptr ||
        next->tracing != 0) [[unlikely]] {
        switch_tracing_slow(prev, next, prev_finished);
    }
}
// tasklet.trace_function / profile_function.
PyObject* get_trace_hook(Tasklet* t, bool profile) noexcept;
int set_trace_hook(Tasklet* t, PyObject* value, bool profile) noexcept;

// --- tasklet (stackless_tasklet.cpp) ---
// Raises `bomb` in the tasklet (throw/kill/raise_exception).
PyObject* throw_bomb(Tasklet* t, Ref bomb, bool pending) noexcept;
// tasklet.bind(func, args, kwargs); -1 with an exception set.
int bind_tasklet(Tasklet* t, PyObject* func, PyObject* args, PyObject* kwargs) noexcept;

// --- pickling (stackless_pickle.cpp), spec §1.2-§1.3 ---
// A tasklet pickles while it has no frames on a stack of its own: not alive,
// or bound to its function and arguments but not started.
PyObject* tasklet_reduce(PyObject* self, PyObject*) noexcept;
PyObject* tasklet_reduce_ex(PyObject* self, PyObject* protocol) noexcept;
PyObject* tasklet_setstate(PyObject* self, PyObject* state) noexcept;
// A channel pickles with its flags while no tasklet is blocked on it.
PyObject* channel_reduce(PyObject* self, PyObject*) noexcept;
PyObject* channel_reduce_ex(PyObject* self, PyObject* protocol) noexcept;
PyObject* channel_setstate(PyObject* self, PyObject* state) noexcept;

// --- garbage collection (stackless_gc.cpp), spec §2.8 ---
// tp_finalize: a started tasklet suspended out of every ring and queue that
// became unreachable is killed on its own stack (up to ten times, then it
// goes to gc.garbage), at once where a switch is safe, else at the thread's
// next safe scheduling point, or in its own thread.
void tasklet_finalize(PyObject* self) noexcept;
// Kills the doomed tasklets if a switch is safe here.
void run_deferred_kills(StacklessThread* ts) noexcept;

// --- module (stackless_module.cpp) ---
PyObject* create_stackless_module();

}  // namespace syncless::stackless_face
