// Trace and profile functions per tasklet, as in Stackless: sys.settrace()
// sets the running tasklet's, a switch puts the outgoing tasklet's away and
// installs the incoming one's, and a new tasklet starts with none (a
// debugger follows tasklets with a schedule callback that sets them). The
// thread's tracing depth (inside a trace function) travels the same way, so
// a trace function that switches tasklets leaves the others traced.
#include "stackless_object.hpp"
#include "stackless_preempt.hpp"

namespace syncless::stackless_face {

namespace {

TraceHook thread_hook(PyThreadState* tstate, bool profile) {
    return profile ? TraceHook{tstate->c_profilefunc, Ref::borrow(tstate->c_profileobj)}
                   : TraceHook{tstate->c_tracefunc, Ref::borrow(tstate->c_traceobj)};
}

void install(const TraceHook& hook, bool profile) {
    if (profile) {
        PyEval_SetProfile(hook.func, hook.obj.get());
    } else {
        PyEval_SetTrace(hook.func, hook.obj.get());
    }
}

void set_tracing_depth(PyThreadState* tstate, int depth) {
    tstate->tracing = depth;
#if PY_VERSION_HEX < 0x030C0000
    // 3.11 keeps "trace now?" in the frame-level flag as well.
    tstate->cframe->use_tracing =
        depth == 0 && (tstate->c_tracefunc != nullptr || tstate->c_profilefunc != nullptr) ? 255
                                                                                           : 0;
#endif
}

// What sys.settrace(f) / sys.setprofile(f) installs: CPython's trampoline,
// a static function that can only be learnt by asking (once).
Py_tracefunc trampolines[2] = {nullptr, nullptr};

Py_tracefunc trampoline(PyObject* callable, bool profile) {
    Py_tracefunc& known = trampolines[profile];
    if (known != nullptr) {
        return known;
    }
    PyThreadState* tstate = PyThreadState_GET();
    TraceHook before = thread_hook(tstate, profile);
    Ref done = Ref::steal(
        PyObject_CallOneArg(PySys_GetObject(profile ? "setprofile" : "settrace"), callable));
    if (done) {
        known = thread_hook(tstate, profile).func;
    }
    install(before, profile);
    return known;
}

}  // namespace

void switch_tracing_slow(Tasklet* prev, Tasklet* next, bool prev_finished) noexcept {
    if (prev == next) {
        return;
    }
    PyThreadState* tstate = PyThreadState_GET();
    SavedError keep;
    StacklessThread* ts = this_thread_if_any();
    if (ts != nullptr) {
        preempt_remove_hook(ts);  // the one-shot hook stands in for prev's own
    }
    TraceHook out_trace = thread_hook(tstate, false);
    TraceHook out_profile = thread_hook(tstate, true);
    int out_depth = tstate->tracing;
    auto put_away = [&] {
        if (!prev_finished) {
            prev->trace = std::move(out_trace);
            prev->profile = std::move(out_profile);
            prev->tracing = out_depth;
        }
    };
    // The coio hub runs no Python code: a traced tasklet that waits on I/O
    // leaves its functions installed, and gets them back at no cost (on
    // 3.12+ every change re-instruments the code that runs next).
    if (next->is_hub) {
        put_away();
        return;
    }
    if (prev->is_hub) {
        prev_finished = true;  // whatever is installed is another tasklet's
    }
    // Installing may run audit hooks ("sys.settrace"): Python code in the
    // middle of a switch, so the ring is locked as for the schedule
    // callback (a switch in there raises RuntimeError).
    bool was_locked = ts != nullptr && ts->schedlock;
    if (ts != nullptr) {
        ts->schedlock = true;
    }
    if (!(out_trace == next->trace)) {
        install(next->trace, false);
    }
    if (!(out_profile == next->profile)) {
        install(next->profile, true);
    }
    if (ts != nullptr) {
        ts->schedlock = was_locked;
    }
    set_tracing_depth(tstate, next->tracing);
    next->trace = TraceHook();
    next->profile = TraceHook();
    next->tracing = 0;
    put_away();
}

PyObject* get_trace_hook(Tasklet* t, bool profile) noexcept {
    const TraceHook* hook = profile ? &t->profile : &t->trace;
    TraceHook running;
    if (t->thread != nullptr && t->thread->current == t) {
        if (t->thread != this_thread_if_any()) {
            Py_RETURN_NONE;  // another thread's: not readable from here
        }
        running = thread_hook(PyThreadState_GET(), profile);
        hook = &running;
    }
    return Py_NewRef(hook->obj ? hook->obj.get() : Py_None);
}

int set_trace_hook(Tasklet* t, PyObject* value, bool profile) noexcept {
    const char* name = profile ? "profile_function" : "trace_function";
    if (value == nullptr) {
        value = Py_None;
    }
    if (!t->alive) {
        PyErr_SetString(PyExc_RuntimeError, "tasklet is not alive");
        return -1;
    }
    if (value != Py_None && !PyCallable_Check(value)) {
        PyErr_Format(PyExc_TypeError, "%s must be callable or None", name);
        return -1;
    }
    if (t->thread != nullptr && t->thread->current == t) {
        if (t->thread != this_thread_if_any()) {
            PyErr_Format(PyExc_RuntimeError,
                         "cannot set the %s of the running tasklet of another thread", name);
            return -1;
        }
        Ref done = Ref::steal(
            PyObject_CallOneArg(PySys_GetObject(profile ? "setprofile" : "settrace"), value));
        return done ? 0 : -1;
    }
    TraceHook hook;
    if (value != Py_None) {
        hook.func = trampoline(value, profile);
        if (hook.func == nullptr) {
            return -1;
        }
        hook.obj = Ref::borrow(value);
    }
    (profile ? t->profile : t->trace) = std::move(hook);
    return 0;
}

}  // namespace syncless::stackless_face
