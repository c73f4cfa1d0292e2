// syncless._syncless.coio_core: the hub's primitives for syncless.coio.
#include "coio_module.hpp"

#include <cerrno>
#include <vector>

#include "dns_module.hpp"
#include "fd_watch.hpp"
#include "socket_ops.hpp"
#include "waiter.hpp"
#include "waker.hpp"

namespace syncless::io {

namespace {

// sleep(seconds): seconds <= 0 returns at once without yielding (as the
// original Syncless); insert() or run() of the sleeper ends it early.
PyObject* mod_sleep(PyObject*, PyObject* arg) {
    double seconds = PyFloat_AsDouble(arg);
    if (seconds == -1.0 && PyErr_Occurred()) {
        return nullptr;
    }
    if (seconds != seconds) {
        PyErr_SetString(PyExc_ValueError, "Invalid value NaN (not a number)");
        return nullptr;
    }
    if (seconds < 0) {
        PyErr_SetString(PyExc_ValueError, "sleep length must be non-negative");
        return nullptr;
    }
    if (seconds == 0) {
        Py_RETURN_NONE;
    }
    if (seconds > 9.2e9) {  // time.sleep's limit: a _PyTime_t of nanoseconds
        PyErr_SetString(PyExc_OverflowError, "timestamp too large to convert to C _PyTime_t");
        return nullptr;
    }
    if (wait_for(-1, 0, seconds) == WaitResult::error) {
        return nullptr;
    }
    Py_RETURN_NONE;
}

// A file descriptor from an int or an object with fileno().
int as_fd(PyObject* obj) noexcept { return PyObject_AsFileDescriptor(obj); }

// wait(fd, events, timeout=None) -> True (ready), False (timed out), None
// (woken early by insert()/run()).
PyObject* mod_wait(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs < 2 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "wait(fd, events, timeout=None)");
        return nullptr;
    }
    int fd = as_fd(args[0]);
    if (fd < 0) {
        return nullptr;
    }
    long events = PyLong_AsLong(args[1]);
    if (events == -1 && PyErr_Occurred()) {
        return nullptr;
    }
    if (events == 0 || (events & ~(EV_READ | EV_WRITE)) != 0) {
        PyErr_SetString(PyExc_ValueError, "events must be EV_READ, EV_WRITE or both");
        return nullptr;
    }
    double timeout;
    if (!parse_timeout(nargs > 2 ? args[2] : nullptr, &timeout)) {
        return nullptr;
    }
    switch (wait_for(fd, static_cast<short>(events), timeout)) {
        case WaitResult::ready:
            Py_RETURN_TRUE;
        case WaitResult::timed_out:
            Py_RETURN_FALSE;
        case WaitResult::woken_early:
            Py_RETURN_NONE;
        case WaitResult::error:
            break;
    }
    return nullptr;
}

// wait_many(fds, events, timeout=None) -> list of what fired per fd (all 0
// after a timeout), or None when woken early.
PyObject* mod_wait_many(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs < 2 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "wait_many(fds, events, timeout=None)");
        return nullptr;
    }
    Ref fds = Ref::steal(PySequence_Fast(args[0], "fds must be a sequence"));
    Ref events = fds ? Ref::steal(PySequence_Fast(args[1], "events must be a sequence")) : Ref();
    if (!events) {
        return nullptr;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(fds.get());
    if (count == 0 || PySequence_Fast_GET_SIZE(events.get()) != count) {
        PyErr_SetString(PyExc_ValueError, "wait_many needs as many events as fds, at least one");
        return nullptr;
    }
    double timeout;
    if (!parse_timeout(nargs > 2 ? args[2] : nullptr, &timeout)) {
        return nullptr;
    }
    std::vector<int> fd_list(static_cast<std::size_t>(count));
    std::vector<short> what(fd_list.size()), fired(fd_list.size());
    for (Py_ssize_t i = 0; i < count; ++i) {
        fd_list[i] = as_fd(PySequence_Fast_GET_ITEM(fds.get(), i));
        long e = PyLong_AsLong(PySequence_Fast_GET_ITEM(events.get(), i));
        if (fd_list[i] < 0 || (e == -1 && PyErr_Occurred())) {
            return nullptr;
        }
        if (e == 0 || (e & ~(EV_READ | EV_WRITE)) != 0) {
            PyErr_SetString(PyExc_ValueError, "events must be EV_READ, EV_WRITE or both");
            return nullptr;
        }
        what[i] = static_cast<short>(e);
    }
    WaitResult result = wait_any(fd_list.data(), what.data(), fired.data(), fd_list.size(), timeout);
    if (result == WaitResult::error) {
        return nullptr;
    }
    if (result == WaitResult::woken_early) {
        Py_RETURN_NONE;
    }
    Ref list = Ref::steal(PyList_New(count));
    for (Py_ssize_t i = 0; list && i < count; ++i) {
        PyObject* mask = PyLong_FromLong(fired[i]);
        if (mask == nullptr) {
            return nullptr;
        }
        PyList_SET_ITEM(list.get(), i, mask);
    }
    return list.release();
}

PyObject* mod_waiting(PyObject*, PyObject*) {
    Hub* hub = Hub::if_any();
    return PyLong_FromLong(hub != nullptr ? hub->waiting() : 0);
}

PyObject* mod_stale_watches(PyObject*, PyObject*) {
    Hub* hub = Hub::if_any();
    return PyLong_FromLong(hub != nullptr ? hub->stale_watches() : 0);
}

PyObject* mod_cancel_waiters(PyObject*, PyObject* arg) {
    int fd = as_fd(arg);
    if (fd < 0) {
        return nullptr;
    }
    return PyLong_FromLong(Hub::cancel_everywhere(fd, bump_fd_generation(fd)));
}

PyObject* mod_reinit(PyObject*, PyObject*) {
    Hub* hub = Hub::if_any();
    if (hub != nullptr && !hub->reinit()) {
        return nullptr;
    }
    Py_RETURN_NONE;
}

PyObject* mod_hub_tasklet(PyObject*, PyObject*) {
    Hub* hub = Hub::for_this_thread();
    if (hub == nullptr) {
        return nullptr;
    }
    return Py_NewRef(reinterpret_cast<PyObject*>(hub->tasklet()));
}

PyObject* mod_backend(PyObject*, PyObject*) {
    Hub* hub = Hub::for_this_thread();
    if (hub == nullptr) {
        return nullptr;
    }
    return Py_BuildValue("(ss)", event_get_version(), event_base_get_method(hub->base()));
}

PyMethodDef functions[] = {
    {"sleep", mod_sleep, METH_O,
     "sleep(seconds)\n\nPark the calling tasklet for `seconds`; 0 returns at once."},
    {"wait", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(mod_wait)), METH_FASTCALL,
     "wait(fd, events, timeout=None) -> True | False | None\n\n"
     "Park until fd is ready (True), the timeout passed (False) or the tasklet was\n"
     "made runnable by someone else (None)."},
    {"wait_many", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(mod_wait_many)), METH_FASTCALL,
     "wait_many(fds, events, timeout=None) -> [fired, ...] | None\n\n"
     "Park until one fd is ready; what fired per fd (all 0 after a timeout),\n"
     "None when the tasklet was made runnable by someone else."},
    {"waiting", mod_waiting, METH_NOARGS,
     "waiting() -> int\n\nWaits in progress in this thread (0 when idle); each one holds\n"
     "its registrations until it ends."},
    {"stale_watches", mod_stale_watches, METH_NOARGS,
     "stale_watches() -> int\n\nReadiness watches of this thread still registered for closed fds\n"
     "(each one a leak; the test suite checks for 0)."},
    {"cancel_waiters", mod_cancel_waiters, METH_O,
     "cancel_waiters(fd) -> int\n\nWake everything waiting on fd with OSError(EBADF)."},
    {"reinit", mod_reinit, METH_NOARGS,
     "reinit()\n\nRe-arm this thread's hub in a forked child."},
    {"hub_tasklet", mod_hub_tasklet, METH_NOARGS,
     "hub_tasklet() -> tasklet\n\nThe tasklet running this thread's event loop."},
    {"backend", mod_backend, METH_NOARGS,
     "backend() -> (libevent version, method)"},
    {"register_socket_class", register_socket_class, METH_O,
     "register_socket_class(cls)\n\nThe class the socket_* methods serve."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "syncless._coio", "The hub's primitives for syncless.coio.", -1,
    functions,
};

}  // namespace

PyObject* create_coio_module() {
    Ref module = Ref::steal(PyModule_Create(&module_def));
    if (!module || PyType_Ready(&Waker_Type) < 0 || !add_socket_methods(module.get()) ||
        PyModule_AddFunctions(module.get(), dns_functions) < 0) {
        return nullptr;
    }
    if (PyModule_AddObjectRef(module.get(), "Waker", reinterpret_cast<PyObject*>(&Waker_Type)) < 0 ||
        PyModule_AddIntConstant(module.get(), "EV_READ", EV_READ) < 0 ||
        PyModule_AddIntConstant(module.get(), "EV_WRITE", EV_WRITE) < 0) {
        return nullptr;
    }
    return module.release();
}

}  // namespace syncless::io
