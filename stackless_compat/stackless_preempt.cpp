// The thread's side of preemption (see stackless_preempt.hpp): arming
// run(timeout), the one-shot trace hook a poke installs, and the interrupt.
#include "stackless_preempt.hpp"

#include <pthread.h>

#include <algorithm>
#include <limits>

#if PY_VERSION_HEX >= 0x030C0000
// Internal but exported: a pending call that any thread of the interpreter
// may run (flags 0). Py_AddPendingCall reaches only the main thread.
extern "C" int _PyEval_AddPendingCall(PyInterpreterState* interp, int (*func)(void*), void* arg,
                                      int flags);
#endif

namespace syncless::stackless_face {

namespace {

int preempt_trace(PyObject*, PyFrameObject*, int, PyObject*) noexcept;

bool hook_installed(PyThreadState* tstate) noexcept {
    return tstate->c_tracefunc == &preempt_trace;
}

void set_trace(PyThreadState* tstate, Py_tracefunc func, PyObject* obj) noexcept {
#if PY_VERSION_HEX < 0x030D0000
    if (_PyEval_SetTrace(tstate, func, obj) < 0) {
        PyErr_WriteUnraisable(nullptr);  // an audit hook refused sys.settrace
    }
#else
    (void)tstate;  // always the running thread's own (pending calls)
    PyEval_SetTrace(func, obj);
#endif
}

// Puts the hook in place of the thread's trace function; `tstate` is the
// thread's, possibly not the caller's (3.11 pokes from the timer thread).
void install_hook(Slice* s, PyThreadState* tstate) noexcept {
    if (!s->hard_due.load(std::memory_order_acquire) || hook_installed(tstate)) {
        return;
    }
    s->saved_trace = tstate->c_tracefunc;
    s->saved_trace_obj = Ref::borrow(tstate->c_traceobj);
    set_trace(tstate, &preempt_trace, nullptr);
#if PY_VERSION_HEX < 0x030C0000
    // 3.11 reports no line event for a jump to itself (`while True: pass`):
    // an opcode event in the running frame comes at the next instruction.
    s->opcode_frame = Ref::steal(reinterpret_cast<PyObject*>(PyThreadState_GetFrame(tstate)));
    if (s->opcode_frame) {
        s->opcode_frame_had = Ref::steal(
            PyObject_GetAttrString(s->opcode_frame.get(), "f_trace_opcodes"));
        if (!s->opcode_frame_had ||
            PyObject_SetAttrString(s->opcode_frame.get(), "f_trace_opcodes", Py_True) < 0) {
            PyErr_Clear();
            s->opcode_frame.reset();
        }
    }
#endif
}

void remove_hook(Slice* s, PyThreadState* tstate) noexcept {
    if (hook_installed(tstate)) {
        Ref obj = std::move(s->saved_trace_obj);
        set_trace(tstate, s->saved_trace, obj.get());
    }
    s->saved_trace = nullptr;
    s->saved_trace_obj.reset();
#if PY_VERSION_HEX < 0x030C0000
    if (s->opcode_frame) {
        if (PyObject_SetAttrString(s->opcode_frame.get(), "f_trace_opcodes",
                                   s->opcode_frame_had.get()) < 0) {
            PyErr_Clear();
        }
        s->opcode_frame.reset();
        s->opcode_frame_had.reset();
    }
#endif
}

// The running tasklet may be interrupted right now: a switch is safe here,
// it is alive and not atomic, no channel callback runs, and the watchdog
// waits in run().
bool interruptible(StacklessThread* ts, Slice* s) noexcept {
    Tasklet* victim = ts->current;
    Tasklet* w = s->watchdog;
    if (!runs_as_ring_head(ts) || victim == w || victim->atomic || !victim->alive ||
        ts->chanlock || w->next != nullptr || w->blocked != 0) {
        return false;
    }
    // Inside a nested interpreter call (a finaliser the collector runs, an
    // import, a callback from C) only when allowed, as in Stackless.
    return victim->ignore_nesting || s->ignore_nesting || nesting_level(victim) == 0;
}

// Switches the running tasklet out to the watchdog, whose run() returns it.
// Returns when the tasklet runs again: false if it was resumed by a bomb.
bool interrupt(StacklessThread* ts, Slice* s) noexcept {
    if (!s->hard_due.load(std::memory_order_acquire)) {
        return true;
    }
    if (!s->total && ts->switches.load(std::memory_order_relaxed) !=
                         s->due_switches.load(std::memory_order_relaxed)) {
        s->hard_due.store(false);  // the slice that ran out is over already
        return true;
    }
    if (!interruptible(ts, s)) {
        ts->pending_irq = true;    // the timer asks again; set_atomic(False) at once
        return true;
    }
    s->hard_due.store(false);
    ts->pending_irq = false;
    Tasklet* victim = ts->current;
    // The slice holds it until run() hands it out: nothing on its own stack
    // may, or a dropped victim could never be collected.
    s->victim = ring_remove(ts, victim);
    victim->tempval = Ref::borrow(Py_None);
    Ref resumed = Ref::steal(schedule_task(ts, victim, s->watchdog, /*voluntary=*/false));
    return static_cast<bool>(resumed);
}

// The hook: it runs at the victim's next trace event, inside CPython's call
// of a trace function. The switch leaves that call half done, so the
// thread's tracing depth is given back to whoever runs meanwhile.
int preempt_trace(PyObject*, PyFrameObject*, int, PyObject*) noexcept {
    PyThreadState* tstate = PyThreadState_GET();
    StacklessThread* ts = this_thread_if_any();
    Slice* s = ts != nullptr ? ts->slice : nullptr;
    if (s == nullptr) {
        set_trace(tstate, nullptr, nullptr);  // cannot happen: disarming removes the hook
        return 0;
    }
    remove_hook(s, tstate);
    int tracing = tstate->tracing;
    tstate->tracing = 0;
#if PY_VERSION_HEX < 0x030C0000
    std::uint8_t use_tracing = tstate->cframe->use_tracing;
    tstate->cframe->use_tracing =
        tstate->c_tracefunc != nullptr || tstate->c_profilefunc != nullptr ? 255 : 0;
#endif
    bool ok = interrupt(ts, s);
    tstate->tracing = tracing;
#if PY_VERSION_HEX < 0x030C0000
    tstate->cframe->use_tracing = use_tracing;
#endif
    return ok ? 0 : -1;
}

#if PY_VERSION_HEX >= 0x030C0000
// A pending call (3.12+): runs in whichever thread of the interpreter looks
// first; in another thread than the poked one it does nothing, and the timer
// pokes again.
int pending_install(void* arg) noexcept {
    auto* ts = static_cast<StacklessThread*>(arg);
    Slice* s = ts->slice;
    if (s == nullptr) {
        return 0;
    }
    s->poke_pending.store(false);
    if (this_thread_if_any() == ts) {
        install_hook(s, PyThreadState_GET());
    }
    return 0;
}
#endif

PyObject* stop_timer(PyObject*, PyObject*) {
    timer_shutdown();
    Py_RETURN_NONE;
}

PyMethodDef stop_timer_def = {"_stop_preemption_timer", stop_timer, METH_NOARGS, nullptr};

// The timer thread must be gone before the interpreter is torn down: it
// pokes threads through the interpreter. atexit runs early enough.
bool stop_timer_at_exit() noexcept {
    static bool registered = false;
    if (registered) {
        return true;
    }
    Ref atexit = Ref::steal(PyImport_ImportModule("atexit"));
    Ref stop = Ref::steal(PyCFunction_New(&stop_timer_def, nullptr));
    if (!atexit || !stop) {
        return false;
    }
    Ref done = Ref::steal(PyObject_CallMethod(atexit.get(), "register", "O", stop.get()));
    registered = static_cast<bool>(done);
    return registered;
}

}  // namespace

void poke_thread(Slice* s) noexcept {
#if PY_VERSION_HEX >= 0x030C0000
    if (s->poke_pending.exchange(true)) {
        return;
    }
    if (_PyEval_AddPendingCall(s->interp, &pending_install, s->ts, 0) != 0) {
        s->poke_pending.store(false);  // the queue is full: next time
    }
#else
    // 3.11's Py_AddPendingCall, called from a thread that is not the main
    // one, queues the call without waking the eval loop. Take the GIL
    // instead and set the thread's trace function from here. The running
    // thread gives the GIL up once a waiter has waited the switch interval:
    // shortened for this one wait (a sys.setswitchinterval() racing with it
    // may be undone).
    unsigned long interval = _PyEval_GetSwitchInterval();
    _PyEval_SetSwitchInterval(std::min(interval, 50UL));
    PyGILState_STATE gil = PyGILState_Ensure();
    _PyEval_SetSwitchInterval(interval);
    if (s->active.load()) {
        install_hook(s, s->tstate);
    }
    PyGILState_Release(gil);
#endif
}

Slice* preempt_arm(StacklessThread* ts, Tasklet* watchdog, long ticks, bool soft, bool total,
                   bool ignore_nesting) noexcept {
    if (ts->slice != nullptr || !stop_timer_at_exit()) {
        PyErr_Clear();
        return nullptr;
    }
    auto* s = new (std::nothrow) Slice();
    if (s == nullptr) {
        return nullptr;
    }
    if (pthread_getcpuclockid(pthread_self(), &s->cpu_clock) != 0) {
        delete s;
        return nullptr;
    }
    constexpr long most = std::numeric_limits<std::int64_t>::max() / tick_ns;
    s->ts = ts;
    s->watchdog = watchdog;
    s->tstate = PyThreadState_GET();
    s->interp = s->tstate->interp;
    s->timeout_ns = (ticks < most ? ticks : most) * tick_ns;
    s->soft = soft;
    s->total = total;
    s->ignore_nesting = ignore_nesting;
    ts->slice = s;
    ts->pending_irq = false;
    ts->soft_irq.store(false);
    timer_watch(s);
    return s;
}

PyObject* preempt_disarm(Slice* s) noexcept {
    StacklessThread* ts = s->ts;
    s->active.store(false);
    timer_forget(s);
    remove_hook(s, PyThreadState_GET());
    ts->slice = nullptr;
    ts->pending_irq = false;
    ts->soft_irq.store(false);
    Ref victim = std::move(s->victim);
    delete s;
    return victim.release();
}

Tasklet* soft_interrupt_target(StacklessThread* ts, Tasklet* prev, Tasklet* next) noexcept {
    ts->soft_irq.store(false, std::memory_order_relaxed);
    Slice* s = ts->slice;
    if (s == nullptr || !s->soft || next == nullptr || ts->switch_trap > 0) {
        return next;
    }
    Tasklet* w = s->watchdog;
    if (w == prev || w == next || w->next != nullptr || w->blocked != 0) {
        return next;
    }
    // `next` (prev itself, when it is the only runnable tasklet) stays the
    // one to run after the watchdog.
    if (next->blocked != 0) {
        Ref held = channel_unlink(next);
        ring_insert(ts, next);
    } else if (next->next == nullptr) {
        ring_insert(ts, next);
    }
    ring_insert_after(ts, next->prev, w);
    return w;
}

void preempt_remove_hook(StacklessThread* ts) noexcept {
    if (ts->slice != nullptr) {
        remove_hook(ts->slice, PyThreadState_GET());
    }
}

bool preempt_if_pending(StacklessThread* ts) noexcept {
    Slice* s = ts->slice;
    if (!ts->pending_irq || s == nullptr || s->soft) {
        return true;
    }
    return interrupt(ts, s);
}

}  // namespace syncless::stackless_face
