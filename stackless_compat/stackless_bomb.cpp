// stackless.bomb: an exception in transit. Whenever a tasklet resumes with a
// bomb in its tempval, the bomb explodes (its exception is raised there).
#include <cstddef>

#include "stackless_object.hpp"

namespace syncless::stackless_face {

namespace {

PyObject* none_if_null(PyObject* o) { return o != nullptr ? o : Py_None; }

PyObject* bomb_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
    static const char* keywords[] = {"type", "value", "traceback", nullptr};
    PyObject* t = nullptr;
    PyObject* v = nullptr;
    PyObject* tb = nullptr;
    // bomb(sys.exc_info()): a single tuple argument is unpacked.
    if ((kwargs == nullptr || PyDict_GET_SIZE(kwargs) == 0) && PyTuple_GET_SIZE(args) == 1 &&
        PyTuple_Check(PyTuple_GET_ITEM(args, 0))) {
        args = PyTuple_GET_ITEM(args, 0);
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OOO:bomb", const_cast<char**>(keywords), &t,
                                     &v, &tb)) {
        return nullptr;
    }
    auto* self = reinterpret_cast<Bomb*>(type->tp_alloc(type, 0));
    if (self == nullptr) {
        return nullptr;
    }
    new (&self->type) Ref(Ref::borrow(none_if_null(t)));
    new (&self->value) Ref(Ref::borrow(none_if_null(v)));
    new (&self->traceback) Ref(Ref::borrow(none_if_null(tb)));
    return reinterpret_cast<PyObject*>(self);
}

int bomb_traverse(Bomb* self, visitproc visit, void* arg) {
    Py_VISIT(self->type.get());
    Py_VISIT(self->value.get());
    Py_VISIT(self->traceback.get());
    return 0;
}

int bomb_clear(Bomb* self) {
    self->type.reset();
    self->value.reset();
    self->traceback.reset();
    return 0;
}

void bomb_dealloc(Bomb* self) {
    PyObject_GC_UnTrack(self);
    bomb_clear(self);
    self->type.~Ref();
    self->value.~Ref();
    self->traceback.~Ref();
    Py_TYPE(self)->tp_free(reinterpret_cast<PyObject*>(self));
}

PyObject* get_type(Bomb* self, void*) { return Py_NewRef(none_if_null(self->type.get())); }
PyObject* get_value(Bomb* self, void*) { return Py_NewRef(none_if_null(self->value.get())); }
PyObject* get_traceback(Bomb* self, void*) {
    return Py_NewRef(none_if_null(self->traceback.get()));
}

PyObject* bomb_reduce(Bomb* self, PyObject*) {
    return Py_BuildValue("(O(OOO))", Py_TYPE(self), none_if_null(self->type.get()),
                         none_if_null(self->value.get()), none_if_null(self->traceback.get()));
}

PyGetSetDef bomb_getsets[] = {
    {"type", reinterpret_cast<getter>(get_type), nullptr, "the exception type", nullptr},
    {"value", reinterpret_cast<getter>(get_value), nullptr, "the exception value", nullptr},
    {"traceback", reinterpret_cast<getter>(get_traceback), nullptr, "the traceback", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyMethodDef bomb_methods[] = {
    {"__reduce__", reinterpret_cast<PyCFunction>(bomb_reduce), METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

PyTypeObject Bomb_Type = [] {
    PyTypeObject t{PyVarObject_HEAD_INIT(nullptr, 0)};
    t.tp_name = "_stackless.bomb";
    t.tp_basicsize = sizeof(Bomb);
    t.tp_dealloc = reinterpret_cast<destructor>(bomb_dealloc);
    t.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE;
    t.tp_doc =
        "bomb(type=None, value=None, traceback=None)\n\n"
        "An exception in transit: a tasklet that resumes with a bomb as its\n"
        "value raises the exception instead.";
    t.tp_traverse = reinterpret_cast<traverseproc>(bomb_traverse);
    t.tp_clear = reinterpret_cast<inquiry>(bomb_clear);
    t.tp_methods = bomb_methods;
    t.tp_getset = bomb_getsets;
    t.tp_new = bomb_new;
    t.tp_free = PyObject_GC_Del;
    return t;
}();

Ref make_bomb(PyObject* type, PyObject* value, PyObject* traceback) noexcept {
    Ref args = Ref::steal(PyTuple_Pack(3, none_if_null(type), none_if_null(value),
                                       none_if_null(traceback)));
    if (!args) {
        return Ref();
    }
    return Ref::steal(bomb_new(&Bomb_Type, args.get(), nullptr));
}

Ref bomb_from_class_and_args(PyObject* args, const char* method) noexcept {
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    PyObject* cls = n > 0 ? PyTuple_GET_ITEM(args, 0) : nullptr;
    if (cls == nullptr || !PyExceptionClass_Check(cls)) {
        PyErr_Format(PyExc_TypeError,
                     "%s needs Exception or string subclass as first parameter", method);
        return Ref();
    }
    Ref rest = Ref::steal(PyTuple_GetSlice(args, 1, n));
    if (!rest) {
        return Ref();
    }
    return make_bomb(cls, rest.get(), nullptr);
}

Ref bomb_from_error() noexcept {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != nullptr && value != nullptr) {
        PyException_SetTraceback(value, tb);
    }
    Ref t = Ref::steal(type), v = Ref::steal(value), b = Ref::steal(tb);
    return make_bomb(t.get(), v.get(), b.get());
}

Ref bomb_from_raise_args(PyObject* exc, PyObject* val, PyObject* tb) noexcept {
    if (tb == Py_None) {
        tb = nullptr;
    } else if (tb != nullptr && !PyTraceBack_Check(tb)) {
        PyErr_SetString(PyExc_TypeError, "third argument must be a traceback object");
        return Ref();
    }
    if (PyExceptionClass_Check(exc)) {
        PyObject* t0 = Py_NewRef(exc);
        PyObject* v0 = val == nullptr || val == Py_None ? nullptr : Py_NewRef(val);
        PyObject* tb0 = Py_XNewRef(tb);
        PyErr_NormalizeException(&t0, &v0, &tb0);
        Ref t = Ref::steal(t0), v = Ref::steal(v0), b = Ref::steal(tb0);
        if (PyErr_Occurred()) {
            return Ref();
        }
        return make_bomb(t.get(), v.get(), b.get());
    }
    if (PyExceptionInstance_Check(exc)) {
        if (val != nullptr && val != Py_None) {
            PyErr_SetString(PyExc_TypeError, "instance exception may not have a separate value");
            return Ref();
        }
        if (tb == nullptr) {
            Ref own = Ref::steal(PyException_GetTraceback(exc));
            return make_bomb(reinterpret_cast<PyObject*>(Py_TYPE(exc)), exc, own.get());
        }
        return make_bomb(reinterpret_cast<PyObject*>(Py_TYPE(exc)), exc, tb);
    }
    PyErr_Format(PyExc_TypeError, "exceptions must be classes, or instances, not %s",
                 Py_TYPE(exc)->tp_name);
    return Ref();
}

void bomb_explode(PyObject* o) noexcept {
    auto* b = reinterpret_cast<Bomb*>(o);
    PyObject* type = b->type.get();
    PyObject* value = b->value.get() == Py_None ? nullptr : b->value.get();
    PyObject* tb = b->traceback.get() == Py_None ? nullptr : b->traceback.get();
    if (type == nullptr || type == Py_None) {
        PyErr_SetString(PyExc_TypeError, "a bomb without an exception type exploded");
        return;
    }
    if (!PyExceptionClass_Check(type)) {
        PyErr_Format(PyExc_TypeError, "exceptions must be classes, or instances, not %s",
                     Py_TYPE(type)->tp_name);
        return;
    }
    // A value that is not an instance of type is its constructor argument
    // (a tuple: the arguments), as for the raise statement.
    Ref instance;
    if (value != nullptr && PyObject_TypeCheck(value, reinterpret_cast<PyTypeObject*>(type))) {
        instance = Ref::borrow(value);
    } else {
        Ref args = value == nullptr         ? Ref::steal(PyTuple_New(0))
                   : PyTuple_Check(value) ? Ref::borrow(value)
                                          : Ref::steal(PyTuple_Pack(1, value));
        if (!args) {
            return;
        }
        instance = Ref::steal(PyObject_Call(type, args.get(), nullptr));
        if (!instance) {
            return;
        }
        if (!PyExceptionInstance_Check(instance.get())) {
            PyErr_Format(PyExc_TypeError,
                         "calling %R should have returned an instance of BaseException, not %s",
                         type, Py_TYPE(instance.get())->tp_name);
            return;
        }
    }
    if (tb != nullptr) {
        PyException_SetTraceback(instance.get(), tb);
    }
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(instance.get())), instance.get());
}

}  // namespace syncless::stackless_face
