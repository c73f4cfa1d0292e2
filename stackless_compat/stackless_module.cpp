// The _stackless module: scheduler functions (getcurrent, schedule, run ...),
// the types and TaskletExit (Stackless's stacklessmodule.c).
#include <algorithm>

#include "stackless_object.hpp"
#include "stackless_preempt.hpp"

namespace syncless::stackless_face {

PyObject* PyExc_TaskletExit = nullptr;

namespace {

PyObject* mod_getcurrent(PyObject*, PyObject*) {
    StacklessThread* ts = this_thread();
    return ts == nullptr ? nullptr : Py_NewRef(as_object(ts->current));
}

PyObject* mod_getmain(PyObject*, PyObject*) {
    StacklessThread* ts = this_thread();
    return ts == nullptr ? nullptr : Py_NewRef(ts->main.get());
}

PyObject* mod_getruncount(PyObject*, PyObject*) {
    StacklessThread* ts = this_thread();
    return ts == nullptr ? nullptr : PyLong_FromSsize_t(ts->runcount);
}

PyObject* mod_getcurrentid(PyObject*, PyObject*) {
    StacklessThread* ts = this_thread();
    if (ts == nullptr) {
        return nullptr;
    }
    if (ts->current->is_main) {
        return PyLong_FromUnsignedLong(PyThread_get_thread_ident());
    }
    return PyLong_FromVoidPtr(ts->current);
}

PyObject* mod_enable_softswitch(PyObject*, PyObject* flag) {
    // Every switch is a hard (C stack) switch here.
    if (flag != Py_None && PyObject_IsTrue(flag) < 0) {
        return nullptr;
    }
    Py_RETURN_FALSE;
}

// schedule(retval=current) and schedule_remove(retval=current); vectorcall,
// since they are on every switch's path.
PyObject* schedule_generic(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                           bool remove) {
    const char* name = remove ? "schedule_remove" : "schedule";
    Py_ssize_t nkw = kwnames != nullptr ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs + nkw > 1) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most 1 argument (%zd given)", name,
                     nargs + nkw);
        return nullptr;
    }
    PyObject* retval = nargs == 1 ? args[0] : nullptr;
    if (nkw == 1) {
        PyObject* key = PyTuple_GET_ITEM(kwnames, 0);
        if (!PyUnicode_Check(key) || PyUnicode_CompareWithASCIIString(key, "retval") != 0) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%S'", name,
                         key);
            return nullptr;
        }
        retval = args[nargs];
    }
    StacklessThread* ts = thread_for_switch();
    if (ts == nullptr) {
        return nullptr;
    }
    Tasklet* prev = ts->current;
    prev->tempval = Ref::borrow(retval != nullptr ? retval : as_object(prev));
    if (!remove) {
        return schedule_task(ts, prev, prev->next);
    }
    // The ring's reference goes with the switch (see tasklet.switch()).
    ts->del_post_switch = ring_remove(ts, prev);
    return schedule_task(ts, prev, ts->head);
}

PyObject* mod_schedule(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
    return schedule_generic(args, nargs, kwnames, false);
}

PyObject* mod_schedule_remove(PyObject*, PyObject* const* args, Py_ssize_t nargs,
                              PyObject* kwnames) {
    return schedule_generic(args, nargs, kwnames, true);
}

// run(): the caller becomes the watchdog. It leaves the ring, which then runs
// until it is empty (the watchdog is revived and run() returns None), an
// uncaught exception of a tasklet comes to the watchdog, or, with a timeout,
// a tasklet is preempted (run() returns it, out of the ring) or, with soft,
// a tasklet whose slice is used up switches voluntarily (run() returns None).
PyObject* mod_run(PyObject*, PyObject* args, PyObject* kwargs) {
    static const char* keywords[] = {"timeout",     "threadblock",  "soft",
                                     "ignore_nesting", "totaltimeout", nullptr};
    long timeout = 0;
    int threadblock = 0, soft = 0, ignore_nesting = 0, totaltimeout = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|liiii:run", const_cast<char**>(keywords),
                                     &timeout, &threadblock, &soft, &ignore_nesting,
                                     &totaltimeout)) {
        return nullptr;
    }
    StacklessThread* ts = thread_for_switch();
    if (ts == nullptr) {
        return nullptr;
    }
    Tasklet* self = ts->current;
    // Only the outermost run(timeout) of a thread preempts (spec §1.5).
    Slice* slice = timeout > 0 ? preempt_arm(ts, self, timeout, soft, totaltimeout,
                                                         ignore_nesting) : nullptr;
    Ref held = ring_remove(ts, self);
    ts->watchdogs.push_back(self);
    // threadblock: an empty ring waits for other threads first (see
    // wait_for_other_threads()); run() returns once none may help any more.
    self->threadblock = threadblock != 0;
    Ref result = Ref::steal(schedule_task(ts, self, ts->head));
    self->threadblock = false;
    Ref interrupted = Ref::steal(slice != nullptr ? preempt_disarm(slice) : nullptr);
    // Off the watchdog stack, with any deeper ones (made runnable again).
    auto it = std::find(ts->watchdogs.begin(), ts->watchdogs.end(), self);
    if (it != ts->watchdogs.end()) {
        for (auto deeper = it + 1; deeper != ts->watchdogs.end(); ++deeper) {
            if ((*deeper)->next == nullptr && (*deeper)->blocked == 0) {
                ring_insert(ts, *deeper);
            }
        }
        ts->watchdogs.erase(it, ts->watchdogs.end());
    }
    if (self->next == nullptr) {
        // Only when the switch failed: run on.
        ring_insert(ts, self);
        ts->head = self;
    }
    if (!result) {
        return nullptr;
    }
    return interrupted ? interrupted.release() : Py_NewRef(Py_None);
}

PyObject* mod_set_error_handler(PyObject*, PyObject* args) {
    PyObject* handler = nullptr;
    if (!PyArg_ParseTuple(args, "|O:set_error_handler", &handler)) {
        return nullptr;
    }
    if (handler != nullptr && handler != Py_None && !PyCallable_Check(handler)) {
        PyErr_SetString(PyExc_TypeError, "error handler must be callable or None");
        return nullptr;
    }
    Ref previous = Ref::steal(error_handler);
    error_handler = handler == Py_None ? nullptr : Py_XNewRef(handler);
    return previous ? previous.release() : Py_NewRef(Py_None);
}

PyObject* mod_switch_trap(PyObject*, PyObject* arg) {
    long delta = PyLong_AsLong(arg);
    if (delta == -1 && PyErr_Occurred()) {
        return nullptr;
    }
    StacklessThread* ts = this_thread();
    if (ts == nullptr) {
        return nullptr;
    }
    long old = ts->switch_trap;
    ts->switch_trap += delta;
    return PyLong_FromLong(old);
}

// _thread_info(thread_id): (main, current, runcount) of a thread with
// stackless state, else None. stackless.get_thread_info() builds on it.
PyObject* mod_thread_info(PyObject*, PyObject* arg) {
    unsigned long id = PyLong_AsUnsignedLong(arg);
    if (id == static_cast<unsigned long>(-1) && PyErr_Occurred()) {
        return nullptr;
    }
    StacklessThread* ts = id == PyThread_get_thread_ident() ? this_thread() : find_thread(id);
    if (ts == nullptr) {
        if (PyErr_Occurred()) {
            return nullptr;
        }
        Py_RETURN_NONE;
    }
    return Py_BuildValue("(OOn)", ts->main.get(), as_object(ts->current), ts->runcount);
}

// set_schedule_callback / set_channel_callback: callable or None; returns the
// previous one (None when unset).
PyObject* set_callback(PyObject** slot, PyObject* callback) {
    if (callback != Py_None && !PyCallable_Check(callback)) {
        PyErr_SetString(PyExc_TypeError, "callback must be callable or None");
        return nullptr;
    }
    Ref previous = Ref::steal(*slot);
    *slot = callback == Py_None ? nullptr : Py_NewRef(callback);
    return previous ? previous.release() : Py_NewRef(Py_None);
}

PyObject* mod_set_schedule_callback(PyObject*, PyObject* callback) {
    return set_callback(&schedule_callback, callback);
}
PyObject* mod_get_schedule_callback(PyObject*, PyObject*) {
    return Py_NewRef(schedule_callback != nullptr ? schedule_callback : Py_None);
}
PyObject* mod_set_channel_callback(PyObject*, PyObject* callback) {
    return set_callback(&channel_callback, callback);
}
PyObject* mod_get_channel_callback(PyObject*, PyObject*) {
    return Py_NewRef(channel_callback != nullptr ? channel_callback : Py_None);
}

PyObject* mod_getuncollectables(PyObject*, PyObject*) { return live_tasklets(); }

#define FUNC(name, fn, flags, doc) \
    {name, reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fn)), flags, doc}
PyMethodDef module_functions[] = {
    FUNC("getcurrent", mod_getcurrent, METH_NOARGS,
         "getcurrent() -> tasklet\n\nThe tasklet running now in this thread."),
    FUNC("getmain", mod_getmain, METH_NOARGS,
         "getmain() -> tasklet\n\nThe main tasklet of this thread."),
    FUNC("getruncount", mod_getruncount, METH_NOARGS,
         "getruncount() -> int\n\nRunnable tasklets of this thread, the current one included."),
    FUNC("getcurrentid", mod_getcurrentid, METH_NOARGS,
         "getcurrentid() -> int\n\nAn id of the current tasklet (the thread id for main)."),
    FUNC("enable_softswitch", mod_enable_softswitch, METH_O,
         "enable_softswitch(flag) -> False\n\nThere is no soft switching here."),
    FUNC("schedule", mod_schedule, METH_FASTCALL | METH_KEYWORDS,
         "schedule(retval=stackless.current)\n\nSwitch to the next runnable tasklet; the "
         "caller stays runnable, at the end of the queue."),
    FUNC("schedule_remove", mod_schedule_remove, METH_FASTCALL | METH_KEYWORDS,
         "schedule_remove(retval=stackless.current)\n\nLike schedule(), but the caller is "
         "removed from the run queue."),
    FUNC("set_error_handler", mod_set_error_handler, METH_VARARGS,
         "set_error_handler([handler]) -> previous handler\n\nhandler(type, value, tb) sees "
         "exceptions escaping non-main tasklets; if it returns, the exception is dropped."),
    FUNC("switch_trap", mod_switch_trap, METH_O,
         "switch_trap(delta) -> previous level\n\nWhile the level is above 0, every "
         "tasklet switch in this thread raises RuntimeError('switch_trap')."),
    FUNC("set_schedule_callback", mod_set_schedule_callback, METH_O,
         "set_schedule_callback(callable or None) -> previous\n\ncallable(prev, next) runs on "
         "every tasklet switch (prev is None when a thread's main tasklet is created)."),
    FUNC("get_schedule_callback", mod_get_schedule_callback, METH_NOARGS,
         "get_schedule_callback() -> the schedule callback or None"),
    FUNC("set_channel_callback", mod_set_channel_callback, METH_O,
         "set_channel_callback(callable or None) -> previous\n\ncallable(channel, tasklet, "
         "sending, willblock) runs before every send and receive."),
    FUNC("get_channel_callback", mod_get_channel_callback, METH_NOARGS,
         "get_channel_callback() -> the channel callback or None"),
    FUNC("getuncollectables", mod_getuncollectables, METH_NOARGS,
         "getuncollectables() -> list\n\nTasklets that hold a C stack: every started, "
         "unfinished tasklet here (all switching is hard switching)."),
    FUNC("_thread_info", mod_thread_info, METH_O, nullptr),
    FUNC("run", mod_run, METH_VARARGS | METH_KEYWORDS,
         "run(timeout=0, threadblock=False, soft=False, ignore_nesting=False, "
         "totaltimeout=False)\n\nRun the runnable tasklets until none is left. With a "
         "timeout (ticks of 10 ns of\nthe thread's CPU time), a tasklet that runs longer "
         "without switching is\ninterrupted and returned. With threadblock, an empty "
         "ring first waits for\nother threads to make a tasklet of this thread runnable."),
    {nullptr, nullptr, 0, nullptr},
};
#undef FUNC

PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_stackless", "Syncless's implementation of Stackless's _stackless.",
    -1,                    module_functions, nullptr, nullptr, nullptr, nullptr,
};

}  // namespace

PyObject* create_stackless_module() {
    for (PyTypeObject* type : {&Tasklet_Type, &Channel_Type, &Bomb_Type}) {
        if (PyType_Ready(type) < 0) {
            return nullptr;
        }
    }
    Ref module = Ref::steal(PyModule_Create(&module_def));
    if (!module) {
        return nullptr;
    }
    if (PyExc_TaskletExit == nullptr) {
        PyExc_TaskletExit = PyErr_NewExceptionWithDoc(
            "builtins.TaskletExit", "Raised in a tasklet to end it (tasklet.kill()).",
            PyExc_SystemExit, nullptr);
        if (PyExc_TaskletExit == nullptr) {
            return nullptr;
        }
    }
    PyObject* m = module.get();
    if (PyModule_AddObjectRef(m, "tasklet", reinterpret_cast<PyObject*>(&Tasklet_Type)) < 0 ||
        PyModule_AddObjectRef(m, "channel", reinterpret_cast<PyObject*>(&Channel_Type)) < 0 ||
        PyModule_AddObjectRef(m, "bomb", reinterpret_cast<PyObject*>(&Bomb_Type)) < 0 ||
        PyModule_AddObjectRef(m, "TaskletExit", PyExc_TaskletExit) < 0) {
        return nullptr;
    }
    return module.release();
}

}  // namespace syncless::stackless_face
