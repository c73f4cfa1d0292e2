// The per-thread interpreter state that belongs to one coroutine.
//
// On every switch the outgoing coroutine's share of PyThreadState is saved
// here and the incoming one's is written back. Everything else in
// PyThreadState (trace functions, the pending exception, the thread's dict)
// is shared by all coroutines of the thread. The field list per CPython
// version is in shared spec/greenlet.md §A; every version difference of the
// core lives in this file and interp_state.cpp.
#pragma once
#include <Python.h>
#include <cstdint>

#if PY_VERSION_HEX < 0x030B0000 || PY_VERSION_HEX >= 0x030E0000
#error "syncless supports CPython 3.11, 3.12 and 3.13"
#endif

#define SYNCLESS_HAS_CFRAME (PY_VERSION_HEX < 0x030D0000)

namespace syncless {

struct StackSlot;

// The innermost frame of the coroutine running in tstate.
struct _PyInterpreterFrame* current_frame_of(PyThreadState* tstate) noexcept;
// How deep in Python calls the coroutine running in tstate is.
int python_recursion_depth(PyThreadState* tstate) noexcept;

inline bool interpreter_finalizing() noexcept {
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing();
#else
    return _Py_IsFinalizing();
#endif
}

class InterpState {
public:
    // Saves what the running coroutine owns from tstate. The context becomes
    // a reference owned by this object.
    void save(PyThreadState* tstate) noexcept;
    // Writes the saved state back; ownership of context moves to tstate.
    void restore(PyThreadState* tstate) noexcept;

    // State of a coroutine that has not run yet: no frames, no handled
    // exception, an empty context, the root frame chunk placed in its stack
    // slot, and the recursion depth of whoever starts it (0 if fresh_depth).
    void init_new(PyThreadState* tstate, const StackSlot& slot, std::size_t chunk_size,
                  bool fresh_depth) noexcept;

#if SYNCLESS_HAS_CFRAME
    // Runs on the new stack before any Python code: gives the coroutine a
    // _PyCFrame of its own that lives as long as the coroutine's stack.
    void enter_new_cframe(PyThreadState* tstate, _PyCFrame* local) noexcept;
#endif
#if PY_VERSION_HEX < 0x030C0000
    // The tracing flag is per thread: it follows the thread into the target.
    void inherit_tracing(PyThreadState* origin) noexcept;
#endif

    // For a coroutine discarded without unwinding (its thread is gone): frees
    // its frame objects and the extra frame chunks (the root chunk lives in
    // the stack slot), and returns true. If some frame object is still held
    // elsewhere, frees nothing and returns false: the caller must then keep
    // the stack slot too, since that object reads frame memory. Objects the
    // frames reference are leaked, as with greenlet.
    bool discard_frames() noexcept;

    PyObject* context() const noexcept { return context_; }
    // A suspended coroutine's Python recursion depth, and innermost frame.
    int recursion_depth() const noexcept { return py_recursion_depth_; }
    const struct _PyInterpreterFrame* innermost_frame() const noexcept { return current_frame_; }
    void set_context(PyObject* owned) noexcept;
    // The frame object of a suspended coroutine's innermost complete frame
    // (gr_frame), created on first request: creating one on every switch
    // would cost each switch an allocation check for a rarely read value.
    // Borrowed: its interpreter frame owns it. Null with an exception set
    // when it cannot be allocated; null without one when there is no frame.
    PyFrameObject* frame_object(PyThreadState* tstate) noexcept;
    int traverse(visitproc visit, void* arg) noexcept;
    // A suspended coroutine's frames, as far as the collector may see them
    // (frame_chain.hpp).
    int traverse_frames(visitproc visit, void* arg, PyObject* const* innermost_stack_top) noexcept;
    void clear() noexcept;

private:
    // Recursion depths (stored as depths, so a changed limit applies) and,
    // before 3.12, the tracing flag.
    void copy_depth_and_tracing(PyThreadState* tstate) noexcept;

    PyObject* context_ = nullptr;
    PyFrameObject* top_frame_ = nullptr;  // borrowed; see frame_object()
    struct _PyInterpreterFrame* current_frame_ = nullptr;
    _PyStackChunk* datastack_chunk_ = nullptr;
    PyObject** datastack_top_ = nullptr;
    PyObject** datastack_limit_ = nullptr;
    _PyErr_StackItem* exc_info_ = nullptr;
    _PyErr_StackItem exc_state_ = {};
    int py_recursion_depth_ = 0;
#if SYNCLESS_HAS_CFRAME
    _PyCFrame* cframe_ = nullptr;
#endif
#if PY_VERSION_HEX < 0x030C0000
    std::uint8_t use_tracing_ = 0;
#else
    int c_recursion_depth_ = 0;
#endif
#if PY_VERSION_HEX < 0x030D0000
    int trash_delete_nesting_ = 0;
#else
    PyObject* delete_later_ = nullptr;
    std::uintptr_t critical_section_ = 0;
#endif
};

}  // namespace syncless
