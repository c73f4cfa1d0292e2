// stackless.tasklet: bind/setup, insert/remove, run/switch, throw/kill and
// the state attributes (Stackless's taskletobject.c).
#include "stackless_object.hpp"
#include "stackless_preempt.hpp"

namespace syncless::stackless_face {

namespace {

PyObject* tasklet_new(PyTypeObject* type, PyObject*, PyObject*) {
    StacklessThread* ts = this_thread();
    if (ts == nullptr) {
        return nullptr;
    }
    auto* self = reinterpret_cast<Tasklet*>(type->tp_alloc(type, 0));
    if (self == nullptr) {
        return nullptr;
    }
    self->construct(false);
    self->thread = ts;
    return as_object(self);
}

bool is_current(Tasklet* t) { return t->thread != nullptr && t->thread->current == t; }

// An operation on `t` changes t's thread's ring, which may be another
// thread's (spec §2.9). False with RuntimeError inside the schedule callback
// or once t's thread ended.
bool check_thread(Tasklet* t) {
    StacklessThread* ts = this_thread();
    return ts != nullptr && check_not_in_callback(ts) && live_thread_of(t) != nullptr;
}

// Links `t` (alive, in no ring) at the tail of its thread's ring, waking that
// thread when it is another one.
void insert_in_its_ring(Tasklet* t) {
    if (t->thread == this_thread_if_any()) {
        ring_insert(t->thread, t);
    } else {
        make_runnable_in_its_thread(t, false);
    }
}

// What run()/throw() return when their tasklet is another thread's: the
// caller runs on (Stackless's schedule_task_interthread) and claims its own
// tempval, as after a switch that came straight back.
PyObject* run_on(StacklessThread* ts) {
    Ref value = claim_tempval(ts->current);
    if (is_bomb(value.get())) {
        bomb_explode(value.get());
        return nullptr;
    }
    return value.release();
}

// throw() into a tasklet of another thread: the bomb waits in its tempval
// and the tasklet becomes runnable there; pending or not, the caller runs on.
// That thread's running tasklet is refused: it would find the bomb at its
// next switch only, if ever.
PyObject* throw_elsewhere(StacklessThread* ts, Tasklet* self, Ref bomb, bool pending) {
    if (is_current(self) && self->next != nullptr && self->blocked == 0) {
        PyErr_SetString(PyExc_RuntimeError,
                        "can't throw into the running tasklet of another thread");
        return nullptr;
    }
    self->tempval = std::move(bomb);
    make_runnable_in_its_thread(self, false);
    return pending ? Py_NewRef(Py_None) : run_on(ts);
}

// bind(func=None, args=None, kwargs=None)
// take_context: binding a function (not setup()) gives the tasklet the
// binder's context.
// The hub outlives every tasklet that may wait on it.
bool refuse_for_hub(Tasklet* t, const char* what) {
    if (t->is_hub) {
        PyErr_Format(PyExc_RuntimeError, "the coio hub tasklet cannot be %s", what);
        return true;
    }
    return false;
}

int do_bind(Tasklet* self, PyObject* func, PyObject* args, PyObject* kwargs,
            bool take_context = true) {
    if (refuse_for_hub(self, "rebound")) {
        return -1;
    }
    if (func == Py_None) func = nullptr;
    if (args == Py_None) args = nullptr;
    if (kwargs == Py_None) kwargs = nullptr;
    if (func != nullptr && !PyCallable_Check(func)) {
        PyErr_SetString(PyExc_TypeError, "tasklet function must be a callable or None");
        return -1;
    }
    if (args != nullptr && !PyTuple_Check(args)) {
        PyErr_SetString(PyExc_TypeError, "tasklet args must be a tuple or None");
        return -1;
    }
    if (kwargs != nullptr && !PyDict_Check(kwargs)) {
        PyErr_SetString(PyExc_TypeError, "tasklet kwargs must be a dictionary or None");
        return -1;
    }
    if (is_current(self)) {
        PyErr_SetString(PyExc_RuntimeError, "can't (re)bind the current tasklet");
        return -1;
    }
    if (self->next != nullptr) {
        PyErr_SetString(PyExc_RuntimeError, "tasklet is scheduled");
        return -1;
    }
    if (self->co->started() && self->co->active()) {
        PyErr_SetString(PyExc_RuntimeError, "tasklet has C state on its stack");
        return -1;
    }
    if (self->is_main) {
        PyErr_SetString(PyExc_RuntimeError, "can't unbind the main tasklet");
        return -1;
    }
    if (self->co->started()) {
        // A finished tasklet can be bound again: it gets a fresh coroutine.
        self->coroutine.~Coroutine();
        new (&self->coroutine) Coroutine(&tasklet_body);
        self->coroutine.set_owner(self);
        self->coroutine.start_at_depth_zero();
    }
    if (func != nullptr && take_context) {
        // Binding a function also gives the tasklet the binder's context.
        Ref context = current_context();
        if (!context) {
            return -1;
        }
        self->context = std::move(context);
    }
    if (args == nullptr && kwargs == nullptr) {
        self->func.reset();
        self->args.reset();
        self->kwargs.reset();
        self->alive = false;
        self->tempval = Ref::borrow(func != nullptr ? func : Py_None);
        return 0;
    }
    if (func == nullptr) {
        func = self->alive ? self->func.get() : self->tempval.get();
        if (func == nullptr || func == Py_None) {
            PyErr_SetString(PyExc_RuntimeError, "the tasklet was not bound to a function");
            return -1;
        }
    }
    Ref f = Ref::borrow(func);
    self->args = args != nullptr ? Ref::borrow(args) : Ref::steal(PyTuple_New(0));
    if (!self->args) {
        return -1;
    }
    self->kwargs = Ref::borrow(kwargs);
    self->func = std::move(f);
    self->alive = true;
    self->tempval = Ref::borrow(Py_None);
    return 0;
}

int tasklet_init(Tasklet* self, PyObject* args, PyObject* kwargs) {
    static const char* keywords[] = {"func", "args", "kwargs", nullptr};
    PyObject* func = nullptr;
    PyObject* a = nullptr;
    PyObject* kw = nullptr;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OOO:tasklet", const_cast<char**>(keywords),
                                     &func, &a, &kw)) {
        return -1;
    }
    return do_bind(self, func, a, kw);
}

PyObject* tasklet_bind(Tasklet* self, PyObject* args, PyObject* kwargs) {
    static const char* keywords[] = {"func", "args", "kwargs", nullptr};
    PyObject* func = nullptr;
    PyObject* a = nullptr;
    PyObject* kw = nullptr;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OOO:bind", const_cast<char**>(keywords),
                                     &func, &a, &kw)) {
        return nullptr;
    }
    if (do_bind(self, func, a, kw) < 0) {
        return nullptr;
    }
    return Py_NewRef(as_object(self));
}

// tasklet(func=None, args=None, kwargs=None) without a tuple and keyword
// parsing for the usual positional call (every tasklet is made this way);
// anything else takes type's own call.
PyObject* tasklet_vectorcall(PyObject* type, PyObject* const* args, size_t nargsf,
                             PyObject* kwnames) {
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (kwnames != nullptr || nargs > 3) {
        Ref tuple = Ref::steal(PyTuple_New(nargs));
        for (Py_ssize_t i = 0; tuple && i < nargs; ++i) {
            PyTuple_SET_ITEM(tuple.get(), i, Py_NewRef(args[i]));
        }
        Ref kwargs = kwnames != nullptr ? Ref::steal(PyDict_New()) : Ref();
        for (Py_ssize_t i = 0; kwargs && i < PyTuple_GET_SIZE(kwnames); ++i) {
            if (PyDict_SetItem(kwargs.get(), PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0) {
                return nullptr;
            }
        }
        if (!tuple || (kwnames != nullptr && !kwargs)) {
            return nullptr;
        }
        return PyType_Type.tp_call(type, tuple.get(), kwargs.get());
    }
    Ref self = Ref::steal(tasklet_new(reinterpret_cast<PyTypeObject*>(type), nullptr, nullptr));
    if (!self || do_bind(reinterpret_cast<Tasklet*>(self.get()), nargs > 0 ? args[0] : nullptr,
                         nargs > 1 ? args[1] : nullptr, nargs > 2 ? args[2] : nullptr) < 0) {
        return nullptr;
    }
    return self.release();
}

PyObject* tasklet_setup(Tasklet* self, PyObject* args, PyObject* kwargs) {
    if (self->alive) {
        PyErr_SetString(PyExc_RuntimeError, "tasklet is alive");
        return nullptr;
    }
    if (!check_thread(self)) {
        return nullptr;
    }
    PyObject* func = self->tempval.get();
    if (func == Py_None || !PyCallable_Check(func)) {
        PyErr_SetString(PyExc_RuntimeError, "the tasklet was not bound to a function");
        return nullptr;
    }
    Ref f = Ref::borrow(func);
    if (do_bind(self, f.get(), args, kwargs != nullptr ? kwargs : Py_None, false) < 0) {
        return nullptr;
    }
    insert_in_its_ring(self);
    return Py_NewRef(as_object(self));
}

// insert()'s checks, shared by run() and switch().
bool check_runnable(Tasklet* self) {
    if (self->blocked != 0) {
        PyErr_SetString(PyExc_RuntimeError, "You cannot run a blocked tasklet");
        return false;
    }
    if (!self->alive) {
        PyErr_SetString(PyExc_RuntimeError, "You cannot run an unbound(dead) tasklet");
        return false;
    }
    return check_thread(self);
}

PyObject* tasklet_insert(Tasklet* self, PyObject*) {
    if (!check_runnable(self)) {
        return nullptr;
    }
    if (self->next == nullptr) {
        insert_in_its_ring(self);
    }
    return Py_NewRef(as_object(self));
}

PyObject* tasklet_remove(Tasklet* self, PyObject*) {
    if (refuse_for_hub(self, "removed")) {
        return nullptr;
    }
    if (self->blocked != 0) {
        PyErr_SetString(PyExc_RuntimeError, "You cannot remove a blocked tasklet.");
        return nullptr;
    }
    if (is_current(self)) {
        PyErr_SetString(PyExc_RuntimeError, "The current tasklet cannot be removed.");
        return nullptr;
    }
    if (self->next != nullptr) {
        if (!check_thread(self)) {
            return nullptr;
        }
        if (self->thread != this_thread_if_any()) {
            // Its thread may be about to switch to it (see stackless_threads.cpp).
            PyErr_SetString(PyExc_RuntimeError, "can't remove a tasklet of another thread");
            return nullptr;
        }
        Ref held = ring_remove(self->thread, self);
    }
    return Py_NewRef(as_object(self));
}

PyObject* run_or_switch(Tasklet* self, bool remove) {
    StacklessThread* ts = this_thread();
    if (ts == nullptr) {
        return nullptr;
    }
    if (remove && self->thread != ts) {
        PyErr_SetString(PyExc_RuntimeError, "can't switch to a different thread.");
        return nullptr;
    }
    if (!check_runnable(self)) {
        return nullptr;
    }
    if (self->thread != ts) {
        // It goes right after the tasklet running in its thread (spec §2.9).
        make_runnable_in_its_thread(self, true);
        return run_on(ts);
    }
    if (thread_for_switch() == nullptr) {
        return nullptr;
    }
    Tasklet* prev = ts->current;
    if (self == prev) {
        return schedule_task(ts, prev, prev);
    }
    if (ts->switch_trap > 0) {
        PyErr_SetString(PyExc_RuntimeError, "switch_trap");
        return nullptr;
    }
    // Appended at the tail, then the ring pointer jumps to it: tasklets in
    // between are skipped (Stackless: "upsets FIFO order").
    if (self->next == nullptr) {
        ring_insert(ts, self);
    }
    if (remove) {
        // The ring's reference goes with the switch: whoever runs next drops
        // it, so nothing on prev's stack keeps it alive while it is paused.
        ts->del_post_switch = ring_remove(ts, prev);
    }
    return schedule_task(ts, prev, self);
}

PyObject* tasklet_run(Tasklet* self, PyObject*) { return run_or_switch(self, false); }
PyObject* tasklet_switch(Tasklet* self, PyObject*) { return run_or_switch(self, true); }

// bind_thread([thread_id]): to the calling thread or to another one that
// uses stackless. A started tasklet's frames are on a C stack of its thread.
PyObject* tasklet_bind_thread(Tasklet* self, PyObject* args) {
    long thread_id = -1;
    if (!PyArg_ParseTuple(args, "|l:bind_thread", &thread_id)) {
        return nullptr;
    }
    StacklessThread* ts = this_thread();
    if (ts == nullptr) {
        return nullptr;
    }
    if (self->next != nullptr) {
        PyErr_SetString(PyExc_RuntimeError, "can't (re)bind a runnable tasklet");
        return nullptr;
    }
    if (self->co->active() || self->is_main) {
        PyErr_SetString(PyExc_RuntimeError, "tasklet has C state on its stack");
        return nullptr;
    }
    if (thread_id != -1 && static_cast<unsigned long>(thread_id) != ts->thread_id) {
        ts = find_thread(static_cast<unsigned long>(thread_id));
        if (ts == nullptr) {
            PyErr_SetString(PyExc_ValueError, "bad thread");
            return nullptr;
        }
    }
    self->thread = ts;
    Py_RETURN_NONE;
}

// The tasklet's contextvars context, made on first request if it has none.
Ref context_of(Tasklet* self) {
    if (is_current(self)) {
        if (self->thread != this_thread_if_any()) {
            PyErr_SetString(PyExc_RuntimeError,
                            "the context of another thread's current tasklet is not accessible");
            return Ref();
        }
        return current_context();
    }
    if (self->co->status() == Coroutine::Status::suspended) {
        if (self->co->state().context() == nullptr) {
            PyObject* fresh = PyContext_New();
            if (fresh == nullptr) {
                return Ref();
            }
            self->co->state().set_context(fresh);
        }
        return Ref::borrow(self->co->state().context());
    }
    if (!self->context) {
        self->context = Ref::steal(PyContext_New());
    }
    return self->context;
}

PyObject* tasklet_set_context(Tasklet* self, PyObject* context) {
    if (!PyContext_CheckExact(context)) {
        PyErr_SetString(PyExc_TypeError, "argument must be a contextvars.Context");
        return nullptr;
    }
    if (is_current(self)) {
        if (self->thread != this_thread_if_any()) {
            PyErr_SetString(PyExc_RuntimeError,
                            "can't set the context of another thread's current tasklet");
            return nullptr;
        }
        install_context(Ref::borrow(context));
    } else if (self->co->status() == Coroutine::Status::suspended) {
        self->co->state().set_context(Py_NewRef(context));
    } else {
        self->context = Ref::borrow(context);
    }
    return Py_NewRef(as_object(self));
}

// context_run(callable, *args, **kwargs): callable runs in the tasklet's
// context (Context.run on it).
PyObject* tasklet_context_run(Tasklet* self, PyObject* args, PyObject* kwargs) {
    if (PyTuple_GET_SIZE(args) < 1) {
        PyErr_SetString(PyExc_TypeError, "context_run() missing required argument 'callable'");
        return nullptr;
    }
    Ref context = context_of(self);
    if (!context) {
        return nullptr;
    }
    Ref run = Ref::steal(PyObject_GetAttrString(context.get(), "run"));
    if (!run) {
        return nullptr;
    }
    return PyObject_Call(run.get(), args, kwargs);
}

PyObject* tasklet_throw(Tasklet* self, PyObject* args, PyObject* kwargs) {
    static const char* keywords[] = {"exc", "val", "tb", "pending", nullptr};
    PyObject* exc;
    PyObject* val = nullptr;
    PyObject* tb = nullptr;
    int pending = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|OOp:throw", const_cast<char**>(keywords),
                                     &exc, &val, &tb, &pending)) {
        return nullptr;
    }
    Ref bomb = bomb_from_raise_args(exc, val, tb);
    if (!bomb) {
        return nullptr;
    }
    return throw_bomb(self, std::move(bomb), pending != 0);
}

PyObject* tasklet_raise_exception(Tasklet* self, PyObject* args) {
    Ref bomb = bomb_from_class_and_args(args, "tasklet.raise_exception");
    if (!bomb) {
        return nullptr;
    }
    return throw_bomb(self, std::move(bomb), false);
}

PyObject* tasklet_kill(Tasklet* self, PyObject* args, PyObject* kwargs) {
    static const char* keywords[] = {"pending", nullptr};
    int pending = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|p:kill", const_cast<char**>(keywords),
                                     &pending)) {
        return nullptr;
    }
    if (!self->alive && !is_current(self)) {
        Py_RETURN_NONE;
    }
    Ref bomb = make_bomb(PyExc_TaskletExit, nullptr, nullptr);
    if (!bomb) {
        return nullptr;
    }
    return throw_bomb(self, std::move(bomb), pending != 0);
}

PyObject* set_flag(bool* flag, PyObject* value, const char* message) {
    if (!PyLong_Check(value)) {
        PyErr_SetString(PyExc_TypeError, message);
        return nullptr;
    }
    int on = PyObject_IsTrue(value);
    if (on < 0) {
        return nullptr;
    }
    bool old = *flag;
    *flag = on != 0;
    return PyBool_FromLong(old);
}

// Clearing atomic, or allowing nested interrupts, lets an interrupt that
// waited for it happen now (on the current tasklet, which the flag is of).
PyObject* set_flag_then_interrupt(Tasklet* self, bool* flag, PyObject* value,
                                  const char* message) {
    Ref old = Ref::steal(set_flag(flag, value, message));
    StacklessThread* ts = this_thread_if_any();
    if (old && ts != nullptr && self == ts->current && ts->pending_irq &&
        !preempt_if_pending(ts)) {
        return nullptr;
    }
    return old.release();
}

PyObject* tasklet_set_atomic(Tasklet* self, PyObject* flag) {
    return set_flag_then_interrupt(self, &self->atomic, flag,
                                   "set_atomic needs exactly one bool or integer");
}

PyObject* tasklet_set_ignore_nesting(Tasklet* self, PyObject* flag) {
    return set_flag_then_interrupt(self, &self->ignore_nesting, flag,
                                   "set_ignore_nesting needs exactly one bool or integer");
}

// A suspended tasklet's own stack and saved interpreter state, which only it
// owns (a main tasklet's are its thread's).
bool has_suspended_stack(Tasklet* t) {
    return !t->is_main && t->co->status() == Coroutine::Status::suspended;
}

// What a suspended tasklet's frames hold is visited too, so the collector
// finds the cycles through them (a tasklet blocked on a channel that only
// its own frames reference).
int tasklet_traverse(Tasklet* self, visitproc visit, void* arg) {
    Py_VISIT(self->dict);
    Py_VISIT(self->tempval.get());
    Py_VISIT(self->func.get());
    Py_VISIT(self->args.get());
    Py_VISIT(self->kwargs.get());
    Py_VISIT(self->context.get());
    Py_VISIT(self->trace.obj.get());
    Py_VISIT(self->profile.obj.get());
    if (has_suspended_stack(self)) {
        if (int err = self->co->state().traverse(visit, arg)) {
            return err;
        }
        return self->co->state().traverse_frames(visit, arg, self->stack_top);
    }
    return 0;
}

// A suspended tasklet's frames stay: only its finaliser's kill can unwind
// them, and dealloc drops them unrun.
int tasklet_clear(Tasklet* self) {
    Py_CLEAR(self->dict);
    self->tempval = Ref::borrow(Py_None);
    self->func.reset();
    self->args.reset();
    self->kwargs.reset();
    self->context.reset();
    self->trace.func = self->profile.func = nullptr;
    self->trace.obj.reset();
    self->profile.obj.reset();
    if (has_suspended_stack(self)) {
        self->co->state().clear();
    }
    return 0;
}

void tasklet_dealloc(Tasklet* self) {
    // A subclass's dealloc (subtype_dealloc) calls the finaliser itself.
    // Only a suspended stack gives the finaliser work: the usual finished
    // tasklet skips its resurrection dance.
    if (Py_IS_TYPE(as_object(self), &Tasklet_Type) && has_suspended_stack(self) &&
        PyObject_CallFinalizerFromDealloc(as_object(self)) < 0) {
        return;  // resurrected: killed later, or kept in gc.garbage
    }
    PyObject_GC_UnTrack(as_object(self));
    if (self->weakreflist != nullptr) {
        PyObject_ClearWeakRefs(as_object(self));
    }
    tasklet_clear(self);
    live_unlink(self);
    self->destroy();
    Py_TYPE(self)->tp_free(as_object(self));
}

PyObject* as_bool(bool b) { return PyBool_FromLong(b); }
PyObject* or_none(Tasklet* t) { return Py_NewRef(t != nullptr ? as_object(t) : Py_None); }

PyObject* get_alive(Tasklet* s, void*) { return as_bool(s->alive); }
PyObject* get_paused(Tasklet* s, void*) { return as_bool(s->alive && s->next == nullptr); }
PyObject* get_blocked(Tasklet* s, void*) { return as_bool(s->blocked != 0); }
PyObject* get_scheduled(Tasklet* s, void*) { return as_bool(s->next != nullptr); }
PyObject* get_restorable(Tasklet* s, void*) { return as_bool(nesting_level(s) == 0); }
PyObject* get_nesting_level(Tasklet* s, void*) { return PyLong_FromLong(nesting_level(s)); }
PyObject* get_is_main(Tasklet* s, void*) { return as_bool(s->is_main); }
PyObject* get_is_current(Tasklet* s, void*) { return as_bool(is_current(s)); }
// In a channel's queue the channel object heads the ring, as in Stackless:
// the last blocked tasklet's next (and the first one's prev) is the channel.
PyObject* get_next(Tasklet* s, void*) {
    if (s->blocked != 0 && s->next == s->channel->head) {
        return Py_NewRef(as_object(s->channel));
    }
    return or_none(s->next);
}
PyObject* get_prev(Tasklet* s, void*) {
    if (s->blocked != 0 && s == s->channel->head) {
        return Py_NewRef(as_object(s->channel));
    }
    return or_none(s->prev);
}
PyObject* get_atomic(Tasklet* s, void*) { return as_bool(s->atomic); }
PyObject* get_ignore_nesting(Tasklet* s, void*) { return as_bool(s->ignore_nesting); }
PyObject* get_thread_id(Tasklet* s, void*) {
    if (s->thread == nullptr || s->thread->exited.load()) {
        return PyLong_FromLong(-1);
    }
    return PyLong_FromUnsignedLong(s->thread->thread_id);
}
// The innermost Python frame: the thread's for the current tasklet, the
// suspended stack's otherwise (that of the greenlet that runs in it, if
// one does), None before start and after the end.
PyObject* get_frame(Tasklet* s, void*) {
    if (is_current(s)) {
        if (s->thread != this_thread_if_any()) {
            Py_RETURN_NONE;
        }
        PyFrameObject* frame = PyEval_GetFrame();
        return Py_NewRef(frame != nullptr ? reinterpret_cast<PyObject*>(frame) : Py_None);
    }
    if (s->thread != this_thread_if_any()) {
        Py_RETURN_NONE;
    }
    return s->co->active_member()->suspended_frame();
}
PyObject* get_channel(Tasklet* s, void*) {
    return Py_NewRef(s->channel != nullptr ? as_object(s->channel) : Py_None);
}
PyObject* get_context_id(Tasklet* s, void*) {
    Ref context = context_of(s);
    return context ? PyLong_FromVoidPtr(context.get()) : nullptr;
}
PyObject* get_tempval(Tasklet* s, void*) { return Py_NewRef(s->tempval.get()); }
int set_tempval(Tasklet* s, PyObject* value, void*) {
    s->tempval = Ref::borrow(value != nullptr ? value : Py_None);
    return 0;
}
PyObject* get_block_trap(Tasklet* s, void*) { return as_bool(s->block_trap); }
int set_block_trap(Tasklet* s, PyObject* value, void*) {
    if (value == nullptr || !PyLong_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "block_trap must be set to a bool or integer");
        return -1;
    }
    int on = PyObject_IsTrue(value);
    if (on < 0) {
        return -1;
    }
    s->block_trap = on != 0;
    return 0;
}

// The current tasklet's is the thread's; a suspended one's is that of the
// greenlet running in it (its own when none does).
PyObject* get_recursion_depth(Tasklet* s, void*) {
    if (is_current(s)) {
        return PyLong_FromLong(s->thread == this_thread_if_any()
                                   ? python_recursion_depth(PyThreadState_GET())
                                   : 0);
    }
    Coroutine* running = s->co->active_member();
    return PyLong_FromLong(running->status() == Coroutine::Status::suspended
                               ? running->state().recursion_depth()
                               : 0);
}
PyObject* get_trace_function(Tasklet* s, void*) { return get_trace_hook(s, false); }
int set_trace_function(Tasklet* s, PyObject* value, void*) {
    return set_trace_hook(s, value, false);
}
PyObject* get_profile_function(Tasklet* s, void*) { return get_trace_hook(s, true); }
int set_profile_function(Tasklet* s, PyObject* value, void*) {
    return set_trace_hook(s, value, true);
}

#define GET(name, fn) {name, reinterpret_cast<getter>(fn), nullptr, nullptr, nullptr}
PyGetSetDef tasklet_getsets[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, nullptr, nullptr},
    GET("alive", get_alive),
    GET("paused", get_paused),
    GET("blocked", get_blocked),
    GET("scheduled", get_scheduled),
    GET("restorable", get_restorable),
    GET("nesting_level", get_nesting_level),
    GET("is_main", get_is_main),
    GET("is_current", get_is_current),
    GET("next", get_next),
    GET("prev", get_prev),
    GET("atomic", get_atomic),
    GET("ignore_nesting", get_ignore_nesting),
    GET("thread_id", get_thread_id),
    GET("frame", get_frame),
    GET("_channel", get_channel),
    GET("context_id", get_context_id),
    GET("recursion_depth", get_recursion_depth),
    {"tempval", reinterpret_cast<getter>(get_tempval), reinterpret_cast<setter>(set_tempval),
     nullptr, nullptr},
    {"block_trap", reinterpret_cast<getter>(get_block_trap),
     reinterpret_cast<setter>(set_block_trap), nullptr, nullptr},
    {"trace_function", reinterpret_cast<getter>(get_trace_function),
     reinterpret_cast<setter>(set_trace_function), nullptr, nullptr},
    {"profile_function", reinterpret_cast<getter>(get_profile_function),
     reinterpret_cast<setter>(set_profile_function), nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};
#undef GET

#define METHOD(name, fn, flags, doc) \
    {name, reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fn)), flags, doc}
PyMethodDef tasklet_methods[] = {
    METHOD("__reduce__", tasklet_reduce, METH_NOARGS,
           "__reduce__() -> (type, (), state)\n\nPickles a tasklet that has not started."),
    METHOD("__reduce_ex__", tasklet_reduce_ex, METH_O,
           "__reduce_ex__(protocol) -> (type, (), state)"),
    METHOD("__setstate__", tasklet_setstate, METH_O,
           "__setstate__(state) -> self\n\nRestores a pickled tasklet (not alive)."),
    METHOD("bind", tasklet_bind, METH_VARARGS | METH_KEYWORDS,
           "bind(func=None, args=None, kwargs=None) -> self\n\nBind the tasklet to a callable "
           "(with args/kwargs: ready to run, but not scheduled)."),
    METHOD("setup", tasklet_setup, METH_VARARGS | METH_KEYWORDS,
           "setup(*args, **kwargs) -> self\n\nSupply the arguments and append to the run queue."),
    METHOD("insert", tasklet_insert, METH_NOARGS,
           "insert() -> self\n\nAppend to the end of the run queue."),
    METHOD("remove", tasklet_remove, METH_NOARGS,
           "remove() -> self\n\nTake out of the run queue."),
    METHOD("run", tasklet_run, METH_NOARGS,
           "run()\n\nSwitch to this tasklet now; the caller stays runnable."),
    METHOD("switch", tasklet_switch, METH_NOARGS,
           "switch()\n\nLike run(), but the caller is removed from the run queue (paused)."),
    METHOD("throw", tasklet_throw, METH_VARARGS | METH_KEYWORDS,
           "throw(exc, val=None, tb=None, pending=False)\n\nRaise an exception in the tasklet."),
    METHOD("raise_exception", tasklet_raise_exception, METH_VARARGS,
           "raise_exception(exc_class, *args)\n\nRaise exc_class(*args) in the tasklet now."),
    METHOD("kill", tasklet_kill, METH_VARARGS | METH_KEYWORDS,
           "kill(pending=False)\n\nRaise TaskletExit in the tasklet."),
    METHOD("set_atomic", tasklet_set_atomic, METH_O, "set_atomic(flag) -> old flag"),
    METHOD("set_context", tasklet_set_context, METH_O,
           "set_context(context) -> self\n\nThe contextvars.Context the tasklet runs in."),
    METHOD("context_run", tasklet_context_run, METH_VARARGS | METH_KEYWORDS,
           "context_run(callable, *args, **kwargs)\n\nCall callable in the tasklet's context."),
    METHOD("bind_thread", tasklet_bind_thread, METH_VARARGS,
           "bind_thread([thread_id])\n\nBind a tasklet that is not runnable to this thread."),
    METHOD("set_ignore_nesting", tasklet_set_ignore_nesting, METH_O,
           "set_ignore_nesting(flag) -> old flag"),
    {nullptr, nullptr, 0, nullptr},
};
#undef METHOD

}  // namespace

int bind_tasklet(Tasklet* t, PyObject* func, PyObject* args, PyObject* kwargs) noexcept {
    return do_bind(t, func, args, kwargs);
}

PyObject* throw_bomb(Tasklet* self, Ref bomb, bool pending) noexcept {
    if (refuse_for_hub(self, "killed or thrown into")) {
        return nullptr;
    }
    StacklessThread* ts = this_thread();
    if (ts == nullptr) {
        return nullptr;
    }
    if (ts->current == self) {
        bomb_explode(bomb.get());
        return nullptr;
    }
    if (!self->alive) {
        PyObject* type = reinterpret_cast<Bomb*>(bomb.get())->type.get();
        int is_exit = PyObject_IsSubclass(type, PyExc_TaskletExit);
        if (is_exit < 0) {
            return nullptr;
        }
        if (!is_exit) {
            PyErr_SetString(PyExc_RuntimeError, "You cannot throw to a dead tasklet");
            return nullptr;
        }
        if (self->blocked != 0) {
            Ref held = channel_unlink(self);
        } else if (self->next != nullptr && self->thread == ts) {
            Ref held = ring_remove(ts, self);
        }
        Py_RETURN_NONE;
    }
    if (self->thread != nullptr && self->thread->exited.load()) {
        // Its thread is gone: nothing can run it again. A kill drops its
        // frames (objects they reference are leaked); anything else fails.
        PyObject* type = reinterpret_cast<Bomb*>(bomb.get())->type.get();
        int is_exit = PyObject_IsSubclass(type, PyExc_TaskletExit);
        if (is_exit <= 0) {
            if (is_exit == 0) {
                PyErr_SetString(PyExc_RuntimeError, "tasklet has no thread");
            }
            return nullptr;
        }
        Ref keep = Ref::borrow(as_object(self));
        if (self->blocked != 0) {
            Ref held = channel_unlink(self);
        } else if (self->next != nullptr) {
            Ref held = ring_remove(self->thread, self);
        }
        live_unlink(self);
        if (self->co->status() == Coroutine::Status::suspended && !self->is_main) {
            self->co->abandon();
        }
        self->alive = false;
        self->func.reset();
        self->args.reset();
        self->kwargs.reset();
        self->tempval = Ref::borrow(Py_None);
        Py_RETURN_NONE;
    }
    if (!check_thread(self)) {
        return nullptr;
    }
    if (self->thread != ts) {
        return throw_elsewhere(ts, self, std::move(bomb), pending);
    }
    if (pending) {
        self->tempval = std::move(bomb);
        if (self->blocked != 0) {
            Ref held = channel_unlink(self);
            ring_insert(ts, self);
        } else if (self->next == nullptr) {
            ring_insert(ts, self);
        }
        Py_RETURN_NONE;
    }
    if (thread_for_switch() == nullptr) {
        return nullptr;
    }
    if (ts->switch_trap > 0) {
        PyErr_SetString(PyExc_RuntimeError, "switch_trap");
        return nullptr;
    }
    self->tempval = std::move(bomb);
    return schedule_task(ts, ts->current, self);
}

PyTypeObject Tasklet_Type = [] {
    PyTypeObject t{PyVarObject_HEAD_INIT(nullptr, 0)};
    t.tp_name = "_stackless.tasklet";
    t.tp_basicsize = sizeof(Tasklet);
    t.tp_dealloc = reinterpret_cast<destructor>(tasklet_dealloc);
    t.tp_call = reinterpret_cast<ternaryfunc>(tasklet_setup);
    t.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE;
    t.tp_doc =
        "tasklet(func=None, args=None, kwargs=None)\n\n"
        "A lightweight thread of execution, scheduled cooperatively.";
    t.tp_traverse = reinterpret_cast<traverseproc>(tasklet_traverse);
    t.tp_clear = reinterpret_cast<inquiry>(tasklet_clear);
    t.tp_finalize = tasklet_finalize;
    t.tp_weaklistoffset = offsetof(Tasklet, weakreflist);
    t.tp_dictoffset = offsetof(Tasklet, dict);
    t.tp_methods = tasklet_methods;
    t.tp_getset = tasklet_getsets;
    t.tp_init = reinterpret_cast<initproc>(tasklet_init);
    t.tp_alloc = PyType_GenericAlloc;
    t.tp_new = tasklet_new;
    t.tp_vectorcall = tasklet_vectorcall;
    t.tp_free = PyObject_GC_Del;
    return t;
}();

}  // namespace syncless::stackless_face
