// The greenlet._greenlet module: module functions, the exceptions, the
// _C_API capsule and the test/debug functions greenlet's own suite imports.
#include "greenlet_module.hpp"

#include <ctime>

#include "greenlet_switch.hpp"
#include "greenlet_type.hpp"

namespace syncless::greenlet_face {

PyObject* PyExc_GreenletError = nullptr;
PyObject* PyExc_GreenletExit = nullptr;

namespace {

PyGreenlet* api_get_current() {
    if (interpreter_finalizing()) {
        PyErr_SetString(PyExc_RuntimeError, "greenlet is being finalized");
        return nullptr;
    }
    Family* f = this_family();
    if (f == nullptr) {
        return nullptr;
    }
    PyGreenlet* g = current_greenlet(f);
    Py_INCREF(g);
    return g;
}

PyObject* mod_getcurrent(PyObject*, PyObject*) {
    return reinterpret_cast<PyObject*>(api_get_current());
}

PyObject* mod_settrace(PyObject*, PyObject* tracefunc) {
    GreenletThread* t = this_thread();
    if (t == nullptr) {
        return nullptr;
    }
    Ref previous = std::move(t->tracefunc);
    t->tracefunc = tracefunc == Py_None ? Ref() : Ref::borrow(tracefunc);
    return previous ? previous.release() : Py_NewRef(Py_None);
}

PyObject* mod_gettrace(PyObject*, PyObject*) {
    GreenletThread* t = this_thread();
    if (t == nullptr) {
        return nullptr;
    }
    return Py_NewRef(t->tracefunc ? t->tracefunc.get() : Py_None);
}

PyObject* mod_get_pending_cleanup_count(PyObject*, PyObject*) {
    return PyLong_FromSsize_t(pending_cleanup_count());
}

PyObject* mod_get_total_main_greenlets(PyObject*, PyObject*) {
    return PyLong_FromSsize_t(total_main_greenlets());
}

// greenlet's optional gc.get_referrers() sweep for main greenlets leaked on
// dead threads has no counterpart here (our thread cleanup does not need
// it); the switches exist so code that turns it off keeps working.
bool optional_cleanup = true;

PyObject* mod_enable_optional_cleanup(PyObject*, PyObject* flag) {
    int on = PyObject_IsTrue(flag);
    if (on < 0) {
        return nullptr;
    }
    optional_cleanup = on != 0;
    Py_RETURN_NONE;
}

PyObject* mod_get_clocks_used_doing_optional_cleanup(PyObject*, PyObject*) {
    if (!optional_cleanup) {
        Py_RETURN_NONE;
    }
    return PyLong_FromLong(0);
}

PyObject* mod_set_thread_local(PyObject*, PyObject* args) {
    PyObject* key;
    PyObject* value;
    if (!PyArg_ParseTuple(args, "OO:set_thread_local", &key, &value)) {
        return nullptr;
    }
    PyObject* dict = PyThreadState_GetDict();
    if (dict == nullptr || PyDict_SetItem(dict, key, value) < 0) {
        return nullptr;
    }
    Py_RETURN_NONE;
}

#if PY_VERSION_HEX < 0x030D0000
PyObject* mod_get_tstate_trash_delete_nesting(PyObject*, PyObject*) {
#if PY_VERSION_HEX < 0x030C0000
    return PyLong_FromLong(PyThreadState_GET()->trash_delete_nesting);
#else
    return PyLong_FromLong(PyThreadState_GET()->trash.delete_nesting);
#endif
}
#endif

PyMethodDef module_functions[] = {
    {"getcurrent", mod_getcurrent, METH_NOARGS,
     "getcurrent() -> greenlet\n\nReturns the current greenlet (i.e. the one which called this function)."},
    {"settrace", mod_settrace, METH_O,
     "settrace(callback) -> object\n\nSets a new tracing function and returns the previous one."},
    {"gettrace", mod_gettrace, METH_NOARGS,
     "gettrace() -> object\n\nReturns the currently set tracing function, or None."},
    {"get_pending_cleanup_count", mod_get_pending_cleanup_count, METH_NOARGS, nullptr},
    {"get_total_main_greenlets", mod_get_total_main_greenlets, METH_NOARGS, nullptr},
    {"enable_optional_cleanup", mod_enable_optional_cleanup, METH_O, nullptr},
    {"get_clocks_used_doing_optional_cleanup", mod_get_clocks_used_doing_optional_cleanup,
     METH_NOARGS, nullptr},
    {"set_thread_local", mod_set_thread_local, METH_VARARGS, nullptr},
#if PY_VERSION_HEX < 0x030D0000
    {"get_tstate_trash_delete_nesting", mod_get_tstate_trash_delete_nesting, METH_NOARGS, nullptr},
#endif
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "greenlet._greenlet", "Syncless's implementation of greenlet.", -1,
    module_functions,      nullptr,              nullptr,                                  nullptr,
    nullptr,
};

// --- The C API (greenlet.h), slot functions in capsule order. ---

PyGreenlet* api_new(PyObject* run, PyGreenlet* parent) {
    Ref kwargs = Ref::steal(PyDict_New());
    if (!kwargs || (run != nullptr && PyDict_SetItemString(kwargs.get(), "run", run) < 0) ||
        (parent != nullptr &&
         PyDict_SetItemString(kwargs.get(), "parent", reinterpret_cast<PyObject*>(parent)) < 0)) {
        return nullptr;
    }
    Ref empty = Ref::steal(PyTuple_New(0));
    Ref g = Ref::steal(PyGreenlet_Type.tp_new(&PyGreenlet_Type, empty.get(), kwargs.get()));
    if (!g || PyGreenlet_Type.tp_init(g.get(), empty.get(), kwargs.get()) < 0) {
        return nullptr;
    }
    return reinterpret_cast<PyGreenlet*>(g.release());
}

PyObject* api_throw(PyGreenlet* g, PyObject* typ, PyObject* val, PyObject* tb) {
    if (g == nullptr || !is_greenlet(reinterpret_cast<PyObject*>(g))) {
        PyErr_BadArgument();
        return nullptr;
    }
    Family* f = this_family();
    return f == nullptr ? nullptr : throw_greenlet(f, g->pimpl, typ, val, tb);
}

PyObject* api_switch(PyGreenlet* g, PyObject* args, PyObject* kwargs) {
    if (g == nullptr || !is_greenlet(reinterpret_cast<PyObject*>(g))) {
        PyErr_BadArgument();
        return nullptr;
    }
    Family* f = this_family();
    if (f == nullptr) {
        return nullptr;
    }
    Greenlet* target = g->pimpl;
    target->pending = SwitchArgs(args != nullptr ? Ref::borrow(args) : Ref::steal(PyTuple_New(0)),
                                 kwargs != nullptr && PyDict_Check(kwargs) ? Ref::borrow(kwargs) : Ref());
    return switch_greenlet(f, target);
}

int api_set_parent(PyGreenlet* g, PyGreenlet* parent) {
    if (g == nullptr || !is_greenlet(reinterpret_cast<PyObject*>(g))) {
        PyErr_BadArgument();
        return -1;
    }
    return set_parent(g, reinterpret_cast<PyObject*>(parent));
}

// -1 with an error for a non-greenlet; otherwise the flag.
template <bool (*flag)(Greenlet*)>
int api_flag(PyGreenlet* g) {
    if (g == nullptr || !is_greenlet(reinterpret_cast<PyObject*>(g))) {
        PyErr_BadArgument();
        return -1;
    }
    return flag(g->pimpl);
}

bool flag_main(Greenlet* g) { return g->main; }
bool flag_started(Greenlet* g) { return g->co->started(); }
bool flag_active(Greenlet* g) { return is_active(g); }

PyGreenlet* api_get_parent(PyGreenlet* g) {
    if (g == nullptr || !is_greenlet(reinterpret_cast<PyObject*>(g))) {
        PyErr_BadArgument();
        return nullptr;
    }
    PyObject* parent = g->pimpl->parent.get();
    Py_XINCREF(parent);
    return reinterpret_cast<PyGreenlet*>(parent);
}

void* c_api[PyGreenlet_API_pointers];

}  // namespace

PyObject* create_greenlet_module() {
    if (PyType_Ready(&PyGreenlet_Type) < 0) {
        return nullptr;
    }
    Ref module = Ref::steal(PyModule_Create(&module_def));
    if (!module) {
        return nullptr;
    }
    if (PyExc_GreenletError == nullptr) {
        PyExc_GreenletError = PyErr_NewException("greenlet.error", nullptr, nullptr);
        PyExc_GreenletExit =
            PyErr_NewException("greenlet.GreenletExit", PyExc_BaseException, nullptr);
        if (PyExc_GreenletError == nullptr || PyExc_GreenletExit == nullptr) {
            return nullptr;
        }
    }
    c_api[PyGreenlet_Type_NUM] = &PyGreenlet_Type;
    c_api[PyExc_GreenletError_NUM] = PyExc_GreenletError;
    c_api[PyExc_GreenletExit_NUM] = PyExc_GreenletExit;
    c_api[PyGreenlet_New_NUM] = reinterpret_cast<void*>(api_new);
    c_api[PyGreenlet_GetCurrent_NUM] = reinterpret_cast<void*>(api_get_current);
    c_api[PyGreenlet_Throw_NUM] = reinterpret_cast<void*>(api_throw);
    c_api[PyGreenlet_Switch_NUM] = reinterpret_cast<void*>(api_switch);
    c_api[PyGreenlet_SetParent_NUM] = reinterpret_cast<void*>(api_set_parent);
    c_api[PyGreenlet_MAIN_NUM] = reinterpret_cast<void*>(api_flag<flag_main>);
    c_api[PyGreenlet_STARTED_NUM] = reinterpret_cast<void*>(api_flag<flag_started>);
    c_api[PyGreenlet_ACTIVE_NUM] = reinterpret_cast<void*>(api_flag<flag_active>);
    c_api[PyGreenlet_GET_PARENT_NUM] = reinterpret_cast<void*>(api_get_parent);

    PyObject* m = module.get();
    Ref capsule = Ref::steal(PyCapsule_New(c_api, "greenlet._C_API", nullptr));
    if (!capsule || PyModule_AddObjectRef(m, "_C_API", capsule.get()) < 0 ||
        PyModule_AddObjectRef(m, "greenlet", reinterpret_cast<PyObject*>(&PyGreenlet_Type)) < 0 ||
        PyModule_AddObjectRef(m, "error", PyExc_GreenletError) < 0 ||
        PyModule_AddObjectRef(m, "GreenletExit", PyExc_GreenletExit) < 0 ||
        PyModule_AddIntConstant(m, "GREENLET_USE_GC", 1) < 0 ||
        PyModule_AddIntConstant(m, "GREENLET_USE_TRACING", 1) < 0 ||
        PyModule_AddIntConstant(m, "GREENLET_USE_CONTEXT_VARS", 1) < 0 ||
        PyModule_AddIntConstant(m, "GREENLET_USE_STANDARD_THREADING", 1) < 0 ||
        PyModule_AddObjectRef(m, "CLOCKS_PER_SEC", Ref::steal(PyLong_FromLong(CLOCKS_PER_SEC)).get()) < 0) {
        return nullptr;
    }
    // eventlet and others read these from the type as well as the module.
    for (const char* name : {"getcurrent", "error", "GreenletExit", "settrace", "gettrace"}) {
        Ref value = Ref::steal(PyObject_GetAttrString(m, name));
        if (!value || PyDict_SetItemString(PyGreenlet_Type.tp_dict, name, value.get()) < 0) {
            return nullptr;
        }
    }
    PyType_Modified(&PyGreenlet_Type);
    return module.release();
}

}  // namespace syncless::greenlet_face
