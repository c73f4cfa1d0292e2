#include "greenlet_switch.hpp"

#include "../scheduler/gil.hpp"

namespace syncless::greenlet_face {

namespace {

// greenlet's messages for another thread; the same, naming tasklets, for
// another family of this thread.
void refuse_switch(Family* f, Family* owner) noexcept {
    if (thread_gone(owner)) {
        PyErr_SetString(PyExc_GreenletError,
                        "cannot switch to a different thread (which happens to have exited)");
    } else if (owner->thread != f->thread) {
        PyErr_Format(PyExc_GreenletError,
                     "Cannot switch to a different thread\n\tCurrent:  %R\n\tExpected: %R",
                     f->thread->main_family->main.get(), owner->thread->main_family->main.get());
    } else if (owner->root == nullptr) {
        PyErr_SetString(PyExc_GreenletError,
                        "cannot switch to a different tasklet (which happens to have exited)");
    } else {
        PyErr_Format(PyExc_GreenletError,
                     "cannot switch to a different tasklet\n\tCurrent:  %R\n\tExpected: %R",
                     f->main.get(), owner->main.get());
    }
}

bool check_switch_allowed(Family* f, Greenlet* target) noexcept {
    // Fast path: a started greenlet of this family.
    if (target->main_greenlet && impl(target->main_greenlet.get())->family == f) {
        return true;
    }
    Family* owner = owning_family(target);
    if (owner == f) {
        return true;
    }
    refuse_switch(f, owner);
    return false;
}

// Reads `run` the way greenlet does: an ordinary attribute lookup, so a
// subclass method or descriptor works. An error pending for a throw is kept
// aside meanwhile, since arbitrary Python code may run.
Ref fetch_run(Greenlet* g) noexcept {
    // An exact greenlet's `run` is the data descriptor over the stored
    // callable: nothing can intercept the lookup, so skip it.
    if (Py_IS_TYPE(reinterpret_cast<PyObject*>(g->self), &PyGreenlet_Type) && g->run) {
        return g->run;
    }
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    static PyObject* run_name = PyUnicode_InternFromString("run");
    Ref run = Ref::steal(PyObject_GetAttr(reinterpret_cast<PyObject*>(g->self), run_name));
    if (run) {
        PyErr_Restore(type, value, tb);
    } else {
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
    }
    return run;
}

// A switch to a dead greenlet lands in its nearest live ancestor, with the
// arguments carried along; an unstarted one is made ready to start. Returns
// the greenlet to jump to, or null with an exception set.
Greenlet* resolve_target(Family* f, Greenlet* target) noexcept {
    for (;;) {
        if (target->co->active()) {
            return target;
        }
        if (!target->co->started()) {
            // The lookup may switch (even into this very greenlet), and the
            // switch arguments must survive that.
            SwitchArgs args = std::move(target->pending);
            Ref run = fetch_run(target);
            target->pending = std::move(args);
            // The lookup may also have re-parented it onto another family.
            if (!run || !check_switch_allowed(f, target)) {
                return nullptr;
            }
            if (target->co->started()) {
                continue;  // the lookup itself started it; switch as usual
            }
            target->start_run = std::move(run);
            target->main_greenlet = f->main;
            return target;
        }
        Greenlet* parent = impl(target->parent.get());
        parent->pending = std::move(target->pending);
        target = parent;
    }
}

// The greenlet-level trace call, in the target right after a switch. A
// failing trace function is removed and its exception replaces the transfer.
bool call_trace(GreenletThread* t, bool throwing, PyObject* origin, PyGreenlet* target) noexcept {
    Ref tracefunc = t->tracefunc;
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyThreadState* tstate = PyThreadState_GET();
    PyThreadState_EnterTracing(tstate);
    Ref result = Ref::steal(PyObject_CallFunction(tracefunc.get(), "s(OO)",
                                                  throwing ? "throw" : "switch",
                                                  origin ? origin : Py_None, target));
    PyThreadState_LeaveTracing(tstate);
    if (!result) {
        t->tracefunc.reset();
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        return false;
    }
    PyErr_Restore(type, value, tb);
    return true;
}

// The family's reference to its running greenlet moves to `origin` (the
// target drops it after the switch, possibly freeing the greenlet we leave)
// and a new one is taken on the target.
void hand_over_current(Family* f, Greenlet* target) noexcept {
    f->thread->origin = std::move(f->current);
    f->current = Ref::borrow(reinterpret_cast<PyObject*>(target->self));
}

// What the resumed greenlet receives: its pending arguments (no arguments
// means an exception is set), after the trace.
PyObject* receive(GreenletThread* t, Greenlet* self) noexcept {
    Ref origin = std::move(t->origin);
    SwitchArgs args = std::move(self->pending);
    if (t->tracefunc && !call_trace(t, !args, origin.get(), self->self)) {
        return nullptr;
    }
    if (!args) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_GreenletError,
                            "cannot switch with no pending arguments or exception");
        }
        return nullptr;
    }
    return switch_result(std::move(args));
}

// greenlet's g_handle_exit: GreenletExit ends a greenlet normally with the
// exception as its value; otherwise the return value is passed on.
SwitchArgs result_of_run(Ref result) noexcept {
    SwitchArgs out;
    if (!result) {
        if (!PyErr_ExceptionMatches(PyExc_GreenletExit)) {
            return out;
        }
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        Py_XDECREF(type);
        Py_XDECREF(tb);
        out.args = value != nullptr ? Ref::steal(value) : Ref::borrow(Py_None);
        out.value = true;
        return out;
    }
    out.args = std::move(result);
    out.value = true;
    return out;
}

}  // namespace

PyObject* switch_result(SwitchArgs&& received) noexcept {
    SwitchArgs args = std::move(received);
    if (args.value) {
        return args.args.release();
    }
    if (!args.kwargs && args.args && PyTuple_CheckExact(args.args.get())) {
        Py_ssize_t n = PyTuple_GET_SIZE(args.args.get());
        return n == 1 ? Py_NewRef(PyTuple_GET_ITEM(args.args.get(), 0)) : args.args.release();
    }
    bool no_kwargs = !args.kwargs || PyDict_GET_SIZE(args.kwargs.get()) == 0;
    if (no_kwargs) {
        PyObject* a = args.args.get();
        if (a != nullptr && PyTuple_CheckExact(a) && PyTuple_GET_SIZE(a) == 1) {
            return Py_NewRef(PyTuple_GET_ITEM(a, 0));
        }
        return a != nullptr ? args.args.release() : PyTuple_New(0);
    }
    if (!args.args || PyTuple_GET_SIZE(args.args.get()) == 0) {
        return args.kwargs.release();
    }
    return PyTuple_Pack(2, args.args.get(), args.kwargs.get());
}

PyObject* switch_greenlet(Family* f, Greenlet* target) noexcept {
    if (!check_switch_allowed(f, target)) {
        target->pending.clear();
        return nullptr;
    }
    GreenletThread* t = f->thread;
    Greenlet* self = impl(current_greenlet(f));
    Greenlet* real = target->co->active() ? target : resolve_target(f, target);
    if (real == nullptr) {
        target->pending.clear();
        return nullptr;
    }
    if (real == self) {
        // A switch to oneself is still a switch to the trace function.
        t->origin = f->current;
        return receive(t, self);
    }
    hand_over_current(f, real);
    if (!real->co->switch_to()) {
        real->pending.clear();
        f->current = std::move(t->origin);
        return nullptr;
    }
    // f may be gone by now (this greenlet may have been adopted by another
    // family to be killed); the thread is still this one.
    return receive(t, self);
}

PyObject* throw_greenlet(Family* f, Greenlet* target, PyObject* typ, PyObject* val,
                         PyObject* tb) noexcept {
    if (tb == Py_None) {
        tb = nullptr;
    } else if (tb != nullptr && !PyTraceBack_Check(tb)) {
        PyErr_SetString(PyExc_TypeError, "throw() third argument must be a traceback object");
        return nullptr;
    }
    Ref type = Ref::borrow(typ);
    Ref value = Ref::borrow(val);
    Ref traceback = Ref::borrow(tb);
    if (PyExceptionClass_Check(typ)) {
        PyObject *t0 = type.release(), *v0 = value.release(), *tb0 = traceback.release();
        PyErr_NormalizeException(&t0, &v0, &tb0);
        type = Ref::steal(t0);
        value = Ref::steal(v0);
        traceback = Ref::steal(tb0);
    } else if (PyExceptionInstance_Check(typ)) {
        if (val != nullptr && val != Py_None) {
            PyErr_SetString(PyExc_TypeError, "instance exception may not have a separate value");
            return nullptr;
        }
        value = type;
        type = Ref::borrow(reinterpret_cast<PyObject*>(Py_TYPE(typ)));
    } else {
        PyErr_Format(PyExc_TypeError, "exceptions must be classes, or instances, not %s",
                     Py_TYPE(typ)->tp_name);
        return nullptr;
    }
    target->pending.clear();
    PyErr_Restore(type.release(), value.release(), traceback.release());
    if (target->co->status() == Coroutine::Status::dead) {
        // A dead greenlet cannot raise: it "exits" with the exception, which
        // then travels to its parent like any other exit.
        target->pending = result_of_run(Ref());
    }
    return switch_greenlet(f, target);
}

void kill_greenlet(Family* f, Greenlet* target) noexcept {
    if (!is_live(owning_family(target))) {
        target->main_greenlet = f->main;
    }
    Ref parent = target->parent;
    target->parent = Ref::borrow(reinterpret_cast<PyObject*>(current_greenlet(f)));
    target->pending.clear();
    PyErr_SetString(PyExc_GreenletExit,
                    "Killing the greenlet because all references have vanished.");
    Ref result = Ref::steal(switch_greenlet(f, target));
    if (!result) {
        PyErr_WriteUnraisable(reinterpret_cast<PyObject*>(target->self));
    }
    if (target->co->active()) {
        target->parent = std::move(parent);
    }
}

Coroutine* greenlet_body(Coroutine* co) noexcept {
    auto* self = static_cast<Greenlet*>(co->owner());
    GreenletThread* t = this_thread_if_any();
    Ref origin = std::move(t->origin);
    SwitchArgs args = std::move(self->pending);
    // Dropping the constructor's callable may run a __del__ that switches;
    // it does so here, inside the new greenlet, as in greenlet.
    self->run.reset();
    bool ok = !t->tracefunc || call_trace(t, !args, origin.get(), self->self);
    origin.reset();
    Ref result;
    if (ok && args && !PyErr_Occurred()) {
        // A finished greenlet's result starts its (unstarted) parent as run(result).
        Ref call_args = args.value  ? Ref::steal(PyTuple_Pack(1, args.args.get()))
                        : args.args ? args.args
                                    : Ref::steal(PyTuple_New(0));
        result = Ref::steal(call_python([&] {
            return PyObject_Call(self->start_run.get(), call_args.get(), args.kwargs.get());
        }));
    }
    args.clear();
    self->start_run.reset();
    SwitchArgs out = result_of_run(std::move(result));
    // The family it finishes in: where it started, or the one that adopted
    // it to kill it.
    Family* f = running_family(t);
    // Up the parent chain until a parent accepts the result (or the error).
    for (Ref parent = self->parent; parent; parent = impl(parent.get())->parent) {
        Greenlet* p = impl(parent.get());
        if (!check_switch_allowed(f, p)) {
            out.clear();
            continue;
        }
        p->pending = out;
        Greenlet* real = resolve_target(f, p);
        if (real == nullptr) {
            out.clear();
            continue;
        }
        hand_over_current(f, real);
        return real->co;
    }
    PyErr_WriteUnraisable(reinterpret_cast<PyObject*>(self->self));
    Py_FatalError("greenlet: ran out of parent greenlets while propagating exception; cannot continue");
}

}  // namespace syncless::greenlet_face
