#include "waker.hpp"

#include "../scheduler/coroutine.hpp"

namespace syncless::io {

using namespace stackless_face;

namespace {

PyObject* waker_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
    if (PyTuple_GET_SIZE(args) != 0 || (kwargs != nullptr && PyDict_GET_SIZE(kwargs) != 0)) {
        PyErr_SetString(PyExc_TypeError, "Waker() takes no arguments");
        return nullptr;
    }
    Hub* hub = Hub::for_this_thread();
    if (hub == nullptr) {
        return nullptr;
    }
    auto* self = reinterpret_cast<Waker*>(type->tp_alloc(type, 0));
    if (self != nullptr) {
        self->hub = hub;
    }
    return reinterpret_cast<PyObject*>(self);
}

void waker_dealloc(Waker* self) { Py_TYPE(self)->tp_free(reinterpret_cast<PyObject*>(self)); }

// Parks the calling tasklet until fire(); an insert() alone does not end the
// wait, an exception (kill, bomb) does.
PyObject* waker_wait(Waker* self, PyObject*) {
    if (self->hub != Hub::if_any()) {
        PyErr_SetString(PyExc_RuntimeError, "Waker.wait() must run in the thread that made it");
        return nullptr;
    }
    if (self->waiting != nullptr) {
        PyErr_SetString(PyExc_RuntimeError, "another tasklet already waits on this Waker");
        return nullptr;
    }
    while (!self->fired) {
        StacklessThread* ts = thread_for_wait();
        if (ts == nullptr) {
            return nullptr;
        }
        Ref keep = Ref::borrow(reinterpret_cast<PyObject*>(self));
        self->waiting = ts->current;
        self->hub->count_wait(1);
        Ref value = Ref::steal(self->hub->park(ts));
        self->hub->count_wait(-1);
        self->waiting = nullptr;
        if (!value) {
            return nullptr;
        }
    }
    Py_RETURN_NONE;
}

PyObject* waker_fire(Waker* self, PyObject*) {
    if (self->fired) {
        Py_RETURN_NONE;
    }
    self->fired = true;
    if (!Hub::is_live(self->hub)) {
        Py_RETURN_NONE;  // its thread ended: nobody can be waiting on it
    }
    if (self->hub == Hub::if_any()) {
        waker_deliver(self);
    } else {
        self->hub->post_from_thread(self);
    }
    Py_RETURN_NONE;
}

PyObject* waker_get_fired(Waker* self, void*) { return PyBool_FromLong(self->fired); }

PyMethodDef waker_methods[] = {
    {"wait", reinterpret_cast<PyCFunction>(waker_wait), METH_NOARGS,
     "wait()\n\nPark the calling tasklet until fire() (returns at once if it already ran)."},
    {"fire", reinterpret_cast<PyCFunction>(waker_fire), METH_NOARGS,
     "fire()\n\nWake the waiting tasklet; callable from any thread."},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef waker_getsets[] = {
    {"fired", reinterpret_cast<getter>(waker_get_fired), nullptr, "fire() has run.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

}  // namespace

void waker_deliver(Waker* w) noexcept {
    if (w->waiting != nullptr) {
        w->hub->wake(w->waiting);
    }
}

PyTypeObject Waker_Type = [] {
    PyTypeObject t{PyVarObject_HEAD_INIT(nullptr, 0)};
    t.tp_name = "syncless._coio.Waker";
    t.tp_basicsize = sizeof(Waker);
    t.tp_dealloc = reinterpret_cast<destructor>(waker_dealloc);
    t.tp_flags = Py_TPFLAGS_DEFAULT;
    t.tp_doc = "Waker()\n\nA one-shot wake-up for a tasklet of this thread, fired from any thread.";
    t.tp_methods = waker_methods;
    t.tp_getset = waker_getsets;
    t.tp_new = waker_new;
    return t;
}();

}  // namespace syncless::io
