// The greenlet.greenlet type: construction, attributes, switch/throw, repr,
// and the kill-on-dealloc and GC rules of greenlet 3.x.
#include "greenlet_type.hpp"

#include <cstddef>

#include "greenlet_switch.hpp"

namespace syncless::greenlet_face {

namespace {

PyObject* as_object(PyGreenlet* g) { return reinterpret_cast<PyObject*>(g); }

// A suspended greenlet whose thread exited can never run again. As greenlet
// does, asking whether it is dead (or for its repr) frees its stack; until
// then its frame stays readable (gr_frame). One whose tasklet ended keeps its
// stack: it is killed when freed.
Greenlet* settle_exited_thread(Greenlet* g) {
    if (!g->main && g->co->status() == Coroutine::Status::suspended &&
        thread_gone(owning_family(g))) {
        g->co->abandon();
    }
    return g;
}

bool running_in_other_thread(Greenlet* g) {
    return g->co->status() == Coroutine::Status::running &&
           g->co->thread() != ThreadCore::current_thread_if_any();
}

PyObject* green_new(PyTypeObject* type, PyObject*, PyObject*) {
    Family* f = this_family();
    if (f == nullptr) {
        return nullptr;
    }
    if (PyType_HasFeature(type, Py_TPFLAGS_IS_ABSTRACT)) {
        // object.__new__ raises the standard "Can't instantiate abstract class".
        Ref empty = Ref::steal(PyTuple_New(0));
        return PyBaseObject_Type.tp_new(type, empty.get(), nullptr);
    }
    // tp_alloc, not object.__new__: the latter creates the instance __dict__
    // eagerly, which most greenlets never use.
    auto* self = reinterpret_cast<PyGreenlet*>(type->tp_alloc(type, 0));
    if (self == nullptr) {
        return nullptr;
    }
    self->pimpl = new (std::nothrow) Greenlet(self, false);
    if (self->pimpl == nullptr) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    self->pimpl->parent = Ref::borrow(as_object(current_greenlet(f)));
    return as_object(self);
}

int green_init(PyGreenlet* self, PyObject* args, PyObject* kwargs) {
    static const char* keywords[] = {"run", "parent", nullptr};
    PyObject* run = nullptr;
    PyObject* parent = nullptr;
    bool positional_only = kwargs == nullptr || PyDict_GET_SIZE(kwargs) == 0;
    if (positional_only && PyTuple_GET_SIZE(args) <= 2) {
        // greenlet(run) and greenlet(run, parent): the common cases, parsed
        // without the general keyword machinery.
        Py_ssize_t n = PyTuple_GET_SIZE(args);
        run = n > 0 ? PyTuple_GET_ITEM(args, 0) : nullptr;
        parent = n > 1 ? PyTuple_GET_ITEM(args, 1) : nullptr;
    } else if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OO:green",
                                            const_cast<char**>(keywords), &run, &parent)) {
        return -1;
    }
    if (run != nullptr && set_run(self, run) < 0) {
        return -1;
    }
    if (parent != nullptr && parent != Py_None) {
        return set_parent(self, parent);
    }
    return 0;
}

int green_traverse(PyGreenlet* self, visitproc visit, void* arg) {
    Greenlet* g = self->pimpl;
    Py_VISIT(self->dict);
    if (g == nullptr) {
        return 0;
    }
    Py_VISIT(g->run.get());
    Py_VISIT(g->start_run.get());
    Py_VISIT(g->parent.get());
    Py_VISIT(g->main_greenlet.get());
    Py_VISIT(g->pending.args.get());
    Py_VISIT(g->pending.kwargs.get());
    return g->co->state().traverse(visit, arg);
}

// A suspended greenlet's frames hold references the collector cannot see
// (they live in its stack), so it only takes part in collection once it
// cannot run again: finished, never started, or its thread is gone. (One
// whose tasklet ended still runs once more: its kill when it is freed.)
int green_is_gc(PyObject* o) {
    Greenlet* g = impl(o);
    if (g == nullptr || g->main || !g->co->active()) {
        return 1;
    }
    return thread_gone(owning_family(g));
}

int green_clear(PyGreenlet* self) {
    Py_CLEAR(self->dict);
    Greenlet* g = self->pimpl;
    if (g != nullptr) {
        g->run.reset();
        g->start_run.reset();
        g->parent.reset();
        g->main_greenlet.reset();
        g->pending.clear();
        g->co->state().clear();
    }
    return 0;
}

// Raises GreenletExit in g now, in the running family of this thread.
void kill_here(PyGreenlet* self) {
    Greenlet* g = self->pimpl;
    Family* here = this_family();
    if (here == nullptr) {
        PyErr_WriteUnraisable(as_object(self));
        g->co->abandon();
        return;
    }
    kill_greenlet(here, g);
    if (Py_REFCNT(as_object(self)) == 1 && g->co->active()) {
        Ref stderr_file = Ref::borrow(PySys_GetObject("stderr"));
        if (stderr_file) {
            Ref text = Ref::steal(PyUnicode_FromFormat("GreenletExit did not kill %R\n", self));
            if (text) {
                PyFile_WriteObject(text.get(), stderr_file.get(), Py_PRINT_RAW);
            }
        }
        PyErr_Clear();
        Py_INCREF(as_object(self));  // deliberately leaked: it would run again
    }
}

// greenlet's kill on dealloc: in its family when that runs now; queued for
// its family when another one (another tasklet, another thread) runs; here
// when its tasklet ended (its stack is intact). Returns false when the
// object must stay alive (it was resurrected, queued, or refused to die).
bool kill_before_free(PyGreenlet* self) {
    Greenlet* g = self->pimpl;
    Py_SET_REFCNT(as_object(self), 1);
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    Family* owner = owning_family(g);
    if (interpreter_finalizing() || thread_gone(owner)) {
        g->co->abandon();  // nothing can run it again; its frames' objects leak
    } else if (owner->thread->core != ThreadCore::current_thread_if_any()) {
        kill_in_family(is_live(owner) ? owner : owner->thread->main_family, self);
    } else if (is_live(owner) && owner != running_family(owner->thread)) {
        kill_in_family(owner, self);
    } else {
        kill_here(self);
    }
    PyErr_Restore(type, value, tb);
    Py_ssize_t refs = Py_REFCNT(as_object(self)) - 1;
    Py_SET_REFCNT(as_object(self), refs);
    if (refs != 0) {
        // A heap type's dealloc (subtype_dealloc) drops a type reference
        // after we return, as if the object were gone: balance it.
        if (PyType_HasFeature(Py_TYPE(self), Py_TPFLAGS_HEAPTYPE)) {
            Py_INCREF(Py_TYPE(self));
        }
        PyObject_GC_Track(as_object(self));
        return false;
    }
    return true;
}

void green_dealloc(PyGreenlet* self) {
    PyObject_GC_UnTrack(as_object(self));
    Greenlet* g = self->pimpl;
    if (g != nullptr && !g->main && g->co->active() && !kill_before_free(self)) {
        return;
    }
    if (self->weakreflist != nullptr) {
        PyObject_ClearWeakRefs(as_object(self));
    }
    green_clear(self);
    if (g != nullptr) {
        self->pimpl = nullptr;
        if (g->main) {
            forget_family(g);
        }
        delete g;
    }
    Py_TYPE(self)->tp_free(as_object(self));
}

bool is_current(PyGreenlet* self) {
    GreenletThread* t = this_thread_if_any();
    Family* here = t != nullptr ? running_family(t) : nullptr;
    return here != nullptr && current_greenlet(here) == self;
}

// greenlet's format; otid names the greenlet's family (its thread's, in
// greenlet), nil once that ended.
PyObject* green_repr(PyGreenlet* self) {
    Greenlet* g = settle_exited_thread(self->pimpl);
    const char* name = Py_TYPE(self)->tp_name;
    Family* family = owning_family(g);
    Family* owner = is_live(family) ? family : nullptr;
    const char* ended = owner != nullptr || !(g->main || g->co->started()) ? ""
                        : thread_gone(family)                              ? " (thread exited)"
                                                                           : " (tasklet exited)";
    if (is_dead(g)) {
        return PyUnicode_FromFormat("<%s object at %p (otid=%p)%s dead>", name, self, owner, ended);
    }
    const char* where = *ended != '\0'     ? ended
                        : is_current(self) ? " current"
                        : g->co->started() ? " suspended"
                                           : "";
    return PyUnicode_FromFormat("<%s object at %p (otid=%p)%s%s%s%s>", name, self, owner, where,
                                is_active(g) ? " active" : "",
                                !g->co->started() ? " pending" : " started", g->main ? " main" : "");
}

int green_bool(PyGreenlet* self) { return is_active(self->pimpl); }

Ref tuple_of(PyObject* const* items, Py_ssize_t n) {
    Ref tuple = Ref::steal(PyTuple_New(n));
    if (tuple) {
        for (Py_ssize_t i = 0; i < n; ++i) {
            PyTuple_SET_ITEM(tuple.get(), i, Py_NewRef(items[i]));
        }
    }
    return tuple;
}

PyObject* green_switch(PyGreenlet* self, PyObject* const* args, Py_ssize_t nargs,
                       PyObject* kwnames) {
    Family* f = this_family();
    if (f == nullptr) {
        return nullptr;
    }
    Ref positional = tuple_of(args, nargs);
    if (!positional) {
        return nullptr;
    }
    Ref keywords;
    if (kwnames != nullptr && PyTuple_GET_SIZE(kwnames) != 0) {
        keywords = Ref::steal(PyDict_New());
        if (!keywords) {
            return nullptr;
        }
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); ++i) {
            if (PyDict_SetItem(keywords.get(), PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0) {
                return nullptr;
            }
        }
    }
    Greenlet* g = self->pimpl;
    g->pending = SwitchArgs(std::move(positional), std::move(keywords));
    return switch_greenlet(f, g);
}

PyObject* green_throw(PyGreenlet* self, PyObject* args) {
    PyObject* typ = PyExc_GreenletExit;
    PyObject* val = nullptr;
    PyObject* tb = nullptr;
    if (!PyArg_ParseTuple(args, "|OOO:throw", &typ, &val, &tb)) {
        return nullptr;
    }
    Family* f = this_family();
    if (f == nullptr) {
        return nullptr;
    }
    return throw_greenlet(f, self->pimpl, typ, val, tb);
}

PyObject* green_getstate(PyGreenlet* self, PyObject*) {
    PyErr_Format(PyExc_TypeError, "cannot serialize '%s' object", Py_TYPE(self)->tp_name);
    return nullptr;
}

PyObject* get_dead(PyGreenlet* self, void*) {
    return PyBool_FromLong(is_dead(settle_exited_thread(self->pimpl)));
}

PyObject* get_run(PyGreenlet* self, void*) {
    Greenlet* g = self->pimpl;
    if (g->main) {
        PyErr_SetString(PyExc_AttributeError, "Main greenlets do not have a run attribute.");
        return nullptr;
    }
    if (g->co->started() || !g->run) {
        PyErr_SetString(PyExc_AttributeError, "run");
        return nullptr;
    }
    return Py_NewRef(g->run.get());
}

int setter_run(PyGreenlet* self, PyObject* value, void*) { return set_run(self, value); }

PyObject* get_parent(PyGreenlet* self, void*) {
    PyObject* parent = self->pimpl->parent.get();
    return Py_NewRef(parent != nullptr ? parent : Py_None);
}

int setter_parent(PyGreenlet* self, PyObject* value, void*) { return set_parent(self, value); }

PyObject* get_frame(PyGreenlet* self, void*) { return self->pimpl->co->suspended_frame(); }

PyObject* get_context(PyGreenlet* self, void*) {
    Greenlet* g = self->pimpl;
    if (running_in_other_thread(g)) {
        PyErr_SetString(PyExc_ValueError,
                        "cannot get context of a greenlet that is running in a different thread");
        return nullptr;
    }
    PyObject* context = g->co->status() == Coroutine::Status::running
                            ? PyThreadState_GET()->context
                            : g->co->state().context();
    return Py_NewRef(context != nullptr ? context : Py_None);
}

int set_context(PyGreenlet* self, PyObject* value, void*) {
    if (value == nullptr) {
        PyErr_SetString(PyExc_AttributeError, "can't delete context attribute");
        return -1;
    }
    if (value == Py_None) {
        value = nullptr;
    } else if (!PyContext_CheckExact(value)) {
        PyErr_SetString(PyExc_TypeError,
                        "greenlet context must be a contextvars.Context or None");
        return -1;
    }
    Greenlet* g = self->pimpl;
    if (running_in_other_thread(g)) {
        PyErr_SetString(PyExc_ValueError,
                        "cannot set context of a greenlet that is running in a different thread");
        return -1;
    }
    if (g->co->status() == Coroutine::Status::running) {
        PyThreadState* tstate = PyThreadState_GET();
        PyObject* old = tstate->context;
        tstate->context = Py_XNewRef(value);
        tstate->context_ver++;
        Py_XDECREF(old);
    } else {
        g->co->state().set_context(Py_XNewRef(value));
    }
    return 0;
}

PyObject* get_stack_saved(PyGreenlet* self, void*) {
    return PyLong_FromSize_t(self->pimpl->co->stack_in_use());
}

PyMethodDef green_methods[] = {
    {"switch", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(green_switch)),
     METH_FASTCALL | METH_KEYWORDS,
     "switch(*args, **kwargs)\n\nSwitch execution to this greenlet.\n\n"
     "If this greenlet has never been run, then this greenlet will be switched\n"
     "to using the body of ``self.run(*args, **kwargs)``.\n\n"
     "If the greenlet is active (has been run, but was switched away from\n"
     "or threw an exception), then it resumes, and ``switch()`` in it returns\n"
     "these arguments."},
    {"throw", reinterpret_cast<PyCFunction>(green_throw), METH_VARARGS,
     "throw(typ[,val[,tb]]) -> raise exception in greenlet, return value passed "
     "when switching back"},
    {"__getstate__", reinterpret_cast<PyCFunction>(green_getstate), METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef green_getsets[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, nullptr, nullptr},
    {"run", reinterpret_cast<getter>(get_run), reinterpret_cast<setter>(setter_run), nullptr, nullptr},
    {"parent", reinterpret_cast<getter>(get_parent), reinterpret_cast<setter>(setter_parent), nullptr, nullptr},
    {"gr_frame", reinterpret_cast<getter>(get_frame), nullptr, nullptr, nullptr},
    {"gr_context", reinterpret_cast<getter>(get_context), reinterpret_cast<setter>(set_context), nullptr, nullptr},
    {"dead", reinterpret_cast<getter>(get_dead), nullptr, nullptr, nullptr},
    {"_stack_saved", reinterpret_cast<getter>(get_stack_saved), nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyNumberMethods green_as_number = [] {
    PyNumberMethods m{};
    m.nb_bool = reinterpret_cast<inquiry>(green_bool);
    return m;
}();

// For a started greenlet's new parent: both in the same family, or both in
// ended ones. ValueError otherwise.
bool same_live_family(Family* mine, Family* theirs) {
    if ((is_live(mine) ? mine : nullptr) == (is_live(theirs) ? theirs : nullptr)) {
        return true;
    }
    bool same_thread = !thread_gone(mine) && !thread_gone(theirs) && mine->thread == theirs->thread;
    PyErr_SetString(PyExc_ValueError, same_thread ? "parent cannot be on a different tasklet"
                                                  : "parent cannot be on a different thread");
    return false;
}

}  // namespace

int set_run(PyGreenlet* self, PyObject* run) {
    Greenlet* g = self->pimpl;
    if (g->main) {
        PyErr_SetString(PyExc_AttributeError, "Main greenlets do not have a run attribute.");
        return -1;
    }
    if (g->co->started()) {
        PyErr_SetString(PyExc_AttributeError, "run cannot be set after the start of the greenlet");
        return -1;
    }
    g->run = Ref::borrow(run);
    return 0;
}

int set_parent(PyGreenlet* self, PyObject* value) {
    Greenlet* g = self->pimpl;
    if (value == nullptr) {
        PyErr_SetString(PyExc_AttributeError, "can't delete attribute");
        return -1;
    }
    if (!is_greenlet(value)) {
        PyErr_Format(PyExc_TypeError, "GreenletChecker: Expected any type of greenlet, not %s",
                     Py_TYPE(value)->tp_name);
        return -1;
    }
    if (g->main) {
        PyErr_SetString(PyExc_AttributeError, "cannot set the parent of a main greenlet");
        return -1;
    }
    for (PyObject* p = value; p != nullptr; p = impl(p)->parent.get()) {
        if (p == as_object(self)) {
            PyErr_SetString(PyExc_ValueError, "cyclic parent chain");
            return -1;
        }
    }
    // A parent in an ended family is accepted; switching there fails later
    // with greenlet.error, as in greenlet.
    if (g->co->started() && !same_live_family(owning_family(g), owning_family(impl(value)))) {
        return -1;
    }
    g->parent = Ref::borrow(value);
    return 0;
}

PyTypeObject PyGreenlet_Type = [] {
    PyTypeObject t{PyVarObject_HEAD_INIT(nullptr, 0)};
    t.tp_name = "greenlet.greenlet";
    t.tp_basicsize = sizeof(PyGreenlet);
    t.tp_dealloc = reinterpret_cast<destructor>(green_dealloc);
    t.tp_repr = reinterpret_cast<reprfunc>(green_repr);
    t.tp_as_number = &green_as_number;
    t.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VERSION_TAG | Py_TPFLAGS_HAVE_GC |
                 Py_TPFLAGS_BASETYPE;
    t.tp_doc =
        "greenlet(run=None, parent=None) -> greenlet\n\n"
        "Creates a new greenlet object (without running it).\n\n"
        " - *run* -- The callable to invoke.\n"
        " - *parent* -- The parent greenlet. The default is the current greenlet.";
    t.tp_traverse = reinterpret_cast<traverseproc>(green_traverse);
    t.tp_clear = reinterpret_cast<inquiry>(green_clear);
    t.tp_weaklistoffset = offsetof(PyGreenlet, weakreflist);
    t.tp_methods = green_methods;
    t.tp_getset = green_getsets;
    t.tp_dictoffset = offsetof(PyGreenlet, dict);
    t.tp_init = reinterpret_cast<initproc>(green_init);
    t.tp_alloc = PyType_GenericAlloc;
    t.tp_new = green_new;
    t.tp_free = PyObject_GC_Del;
    t.tp_is_gc = green_is_gc;
    return t;
}();

}  // namespace syncless::greenlet_face
