// The greenlet type's instance layout and the state behind its pimpl.
#pragma once
#include <Python.h>
#include <new>
#include <utility>
#include <vector>

namespace syncless::greenlet_face { struct Greenlet; }
#define GREENLET_MODULE
#define implementation_ptr_t syncless::greenlet_face::Greenlet*
#include "greenlet.h"

#include "../scheduler/coroutine.hpp"
#include "../scheduler/py_ref.hpp"

static_assert(sizeof(PyGreenlet) == sizeof(PyObject) + 3 * sizeof(void*),
              "PyGreenlet must keep greenlet's ABI: weakreflist, dict, pimpl");

namespace syncless::greenlet_face {

struct Family;

// What a switch carries: positional and keyword arguments, or a finished
// greenlet's result (`value`: args is that object itself, not a tuple). All
// empty with an error set means "throw".
struct SwitchArgs {
    SwitchArgs() noexcept = default;
    SwitchArgs(Ref args_, Ref kwargs_) noexcept : args(std::move(args_)), kwargs(std::move(kwargs_)) {}
    SwitchArgs(const SwitchArgs&) = default;
    SwitchArgs& operator=(const SwitchArgs&) = default;
    SwitchArgs(SwitchArgs&& o) noexcept
        : args(std::move(o.args)), kwargs(std::move(o.kwargs)), value(std::exchange(o.value, false)) {}
    SwitchArgs& operator=(SwitchArgs&& o) noexcept {
        args = std::move(o.args);
        kwargs = std::move(o.kwargs);
        value = std::exchange(o.value, false);
        return *this;
    }

    Ref args;
    Ref kwargs;
    bool value = false;
    explicit operator bool() const noexcept { return args || kwargs; }
    void clear() noexcept { args.reset(); kwargs.reset(); value = false; }
};

struct Greenlet {
    explicit Greenlet(PyGreenlet* self, bool main) noexcept;

    // Created (with `new (std::nothrow)`: no C++ exception may reach CPython)
    // and freed with the GIL held, once per greenlet; CPython's small object
    // allocator is faster than malloc for this.
    static void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
        return PyMem_Malloc(size);
    }
    static void operator delete(void* p) noexcept { PyMem_Free(p); }

    PyGreenlet* self;           // borrowed: the object owns this state
    Coroutine coroutine;        // unused by main greenlets while their family lives
    Coroutine* co;              // &coroutine, or the root of a main greenlet's family
    bool main;
    Ref run;                    // the run callable given before start
    Ref start_run;              // what the first switch looked up; kept while running so GC sees it
    Ref parent;                 // PyGreenlet; null for main greenlets
    Ref main_greenlet;          // the main greenlet of the owning family, once bound
    SwitchArgs pending;         // what the next switch into this greenlet delivers
    Family* family = nullptr;   // main greenlets: their family (owned; see greenlet_thread.hpp)
};

inline Greenlet* impl(PyObject* g) noexcept { return reinterpret_cast<PyGreenlet*>(g)->pimpl; }
inline Greenlet* impl(PyGreenlet* g) noexcept { return g->pimpl; }

extern PyTypeObject PyGreenlet_Type;
extern PyObject* PyExc_GreenletError;
extern PyObject* PyExc_GreenletExit;

inline bool is_greenlet(PyObject* o) noexcept { return PyObject_TypeCheck(o, &PyGreenlet_Type); }

}  // namespace syncless::greenlet_face
