// syncless._syncless: the extension that holds the core and its faces, so
// every face in a process shares one core (one current coroutine per thread).
#include <Python.h>

#include "../greenlet_compat/greenlet_module.hpp"
#include "../io/coio_module.hpp"
#include "../stackless_compat/stackless_module.hpp"
#include "../scheduler/stack_pool.hpp"

namespace {

using syncless::StackPool;

PyObject* set_stack_size(PyObject*, PyObject* arg) {
    Py_ssize_t bytes = PyNumber_AsSsize_t(arg, PyExc_OverflowError);
    if (bytes == -1 && PyErr_Occurred()) {
        return nullptr;
    }
    if (bytes < static_cast<Py_ssize_t>(StackPool::min_stack_size) ||
        static_cast<std::size_t>(bytes) > StackPool::max_stack_size) {
        PyErr_Format(PyExc_ValueError, "stack size must be between %zu and %zu bytes, not %zd",
                     StackPool::min_stack_size, StackPool::max_stack_size, bytes);
        return nullptr;
    }
    if (!StackPool::instance().set_stack_size(static_cast<std::size_t>(bytes))) {
        PyErr_SetString(PyExc_RuntimeError,
                        "the stack size cannot change once a coroutine has started; set it "
                        "first, or use SYNCLESS_STACK_SIZE");
        return nullptr;
    }
    Py_RETURN_NONE;
}

PyObject* stack_pool_stats(PyObject*, PyObject*) {
    syncless::StackPoolStats s = StackPool::instance().stats();
    return Py_BuildValue("{s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:O}", "slot_size", s.slot_size,
                         "stack_size", s.stack_size, "chunk_size", s.chunk_size, "regions",
                         s.regions, "in_use", s.in_use, "hot", s.hot, "cold", s.cold,
                         "guard_pages", s.guard_pages ? Py_True : Py_False);
}

PyMethodDef functions[] = {
    {"set_stack_size", set_stack_size, METH_O,
     "set_stack_size(bytes)\n\nC stack size of every coroutine; only before the first one starts."},
    {"stack_pool_stats", stack_pool_stats, METH_NOARGS,
     "stack_pool_stats() -> dict\n\nSizes and counts of the coroutine stack pool."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "syncless._syncless", "The Syncless core.", -1, functions,
    nullptr,               nullptr,              nullptr,              nullptr,
};

}  // namespace

PyMODINIT_FUNC PyInit__syncless() {
    PyObject* module = PyModule_Create(&module_def);
    if (module == nullptr) {
        return nullptr;
    }
    PyObject* greenlet_module = syncless::greenlet_face::create_greenlet_module();
    if (greenlet_module == nullptr || PyModule_AddObject(module, "greenlet_module", greenlet_module) < 0) {
        Py_XDECREF(greenlet_module);
        Py_DECREF(module);
        return nullptr;
    }
    PyObject* stackless_module = syncless::stackless_face::create_stackless_module();
    if (stackless_module == nullptr ||
        PyModule_AddObject(module, "stackless_module", stackless_module) < 0) {
        Py_XDECREF(stackless_module);
        Py_DECREF(module);
        return nullptr;
    }
    PyObject* coio_module = syncless::io::create_coio_module();
    if (coio_module == nullptr || PyModule_AddObject(module, "coio_module", coio_module) < 0) {
        Py_XDECREF(coio_module);
        Py_DECREF(module);
        return nullptr;
    }
    return module;
}
