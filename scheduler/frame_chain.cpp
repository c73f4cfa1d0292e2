// The only file that reads CPython's internal frame layout; the headers of
// the version compiled against describe it.
#include "frame_chain.hpp"

#include <cstdint>

#define Py_BUILD_CORE 1
#include "internal/pycore_frame.h"

namespace syncless {

namespace {

// Frames in the coroutine's chunks. Generator frames live in their
// generator; 3.12+ entry frames live on the C stack and have no frame
// object.
bool owned_by_coroutine(const _PyInterpreterFrame* frame) {
    return frame->owner == FRAME_OWNED_BY_THREAD;
}

PyCodeObject* code_of(const _PyInterpreterFrame* frame) {
#if PY_VERSION_HEX >= 0x030D0000
    PyObject* executable = frame->f_executable;
    return executable != nullptr && PyCode_Check(executable)
               ? reinterpret_cast<PyCodeObject*>(executable)
               : nullptr;
#else
    return frame->f_code;
#endif
}

PyObject* function_of(const _PyInterpreterFrame* frame) {
#if PY_VERSION_HEX >= 0x030C0000
    return frame->f_funcobj;
#else
    return reinterpret_cast<PyObject*>(frame->f_func);
#endif
}

// The caller of `callee` pushed it from its own interpreter loop, saving its
// stack depth first; otherwise C code called it.
bool pushed_inline(const _PyInterpreterFrame* callee) {
#if PY_VERSION_HEX >= 0x030C0000
    return callee->owner != FRAME_OWNED_BY_CSTACK;
#else
    return !callee->is_entry;
#endif
}

// Frames whose locals and stack the collector sees only through us. A
// generator reports its own frame's contents unless the frame runs (its
// stack depth is the interpreter loop's then, stacktop -1), and then only
// its specials.
bool frame_contents_are_ours(const _PyInterpreterFrame* frame) {
    if (frame->owner == FRAME_OWNED_BY_THREAD) {
        return true;
    }
    return frame->owner == FRAME_OWNED_BY_GENERATOR && frame->stacktop < 0;
}

int visit_range(PyObject* const* items, int from, int to, visitproc visit, void* arg) {
    for (int i = from; i < to; ++i) {
        Py_VISIT(items[i]);
    }
    return 0;
}

// The value stack of `frame`, whose next inner frame is `callee` (null for
// the innermost), as deep as certainly holds live references: when the frame
// pushed its callee inline (it saved its depth then), or, for the innermost
// frame, up to `stack_top` if that lies in its stack (see traverse_frames).
// A frame stopped in a call to C code may otherwise be anywhere in it, even
// past its return and dropping the operands one by one (a __del__ of one, a
// weakref callback, a trace function may switch away then): no depth read
// off its instruction can be trusted, so such a stack stays unseen.
int visit_stack(const _PyInterpreterFrame* frame, const _PyInterpreterFrame* callee,
                PyCodeObject* code, visitproc visit, void* arg, PyObject* const* stack_top) {
    PyObject* const* stack = frame->localsplus + code->co_nlocalsplus;
    std::intptr_t depth;
    if (callee != nullptr) {
        if (!pushed_inline(callee)) {
            return 0;
        }
        depth = frame->stacktop - code->co_nlocalsplus;
    } else {
        // Compared as addresses: stack_top may point into some other array.
        auto top = reinterpret_cast<std::uintptr_t>(stack_top);
        auto base = reinterpret_cast<std::uintptr_t>(stack);
        if (stack_top == nullptr || top < base || (top - base) % sizeof(PyObject*) != 0) {
            return 0;
        }
        depth = static_cast<std::intptr_t>((top - base) / sizeof(PyObject*));
    }
    if (depth < 0 || depth > code->co_stacksize) {
        return 0;
    }
    return visit_range(stack, 0, static_cast<int>(depth), visit, arg);
}

int visit_frame(const _PyInterpreterFrame* frame, const _PyInterpreterFrame* callee,
                visitproc visit, void* arg, PyObject* const* stack_top) {
    PyCodeObject* code = code_of(frame);
    if (code == nullptr) {
        return 0;
    }
    if (frame->owner == FRAME_OWNED_BY_THREAD) {
        Py_VISIT(reinterpret_cast<PyObject*>(frame->frame_obj));
        Py_VISIT(frame->f_locals);
        Py_VISIT(function_of(frame));
        Py_VISIT(reinterpret_cast<PyObject*>(code));
    }
    if (int err = visit_range(frame->localsplus, 0, code->co_nlocalsplus, visit, arg)) {
        return err;
    }
    return visit_stack(frame, callee, code, visit, arg, stack_top);
}

}  // namespace

int interpreter_entries(const _PyInterpreterFrame* innermost) noexcept {
    int entries = 0;
    for (const _PyInterpreterFrame* f = innermost; f != nullptr; f = f->previous) {
#if PY_VERSION_HEX >= 0x030C0000
        entries += f->owner == FRAME_OWNED_BY_CSTACK;  // the loop's entry shim
#else
        entries += f->is_entry;
#endif
    }
    return entries;
}

bool frame_objects_held_elsewhere(_PyInterpreterFrame* innermost) noexcept {
    for (_PyInterpreterFrame* f = innermost; f != nullptr; f = f->previous) {
        if (owned_by_coroutine(f) && f->frame_obj != nullptr &&
            Py_REFCNT(reinterpret_cast<PyObject*>(f->frame_obj)) > 1) {
            return true;
        }
    }
    return false;
}

void release_frame_objects(_PyInterpreterFrame* innermost) noexcept {
    for (_PyInterpreterFrame* f = innermost; f != nullptr; f = f->previous) {
        if (owned_by_coroutine(f) && f->frame_obj != nullptr) {
            PyFrameObject* frame = f->frame_obj;
            f->frame_obj = nullptr;
            Py_DECREF(frame);
        }
    }
}

int traverse_frames(_PyInterpreterFrame* innermost, visitproc visit, void* arg,
                    PyObject* const* innermost_stack_top) noexcept {
    const _PyInterpreterFrame* callee = nullptr;
    for (const _PyInterpreterFrame* f = innermost; f != nullptr; callee = f, f = f->previous) {
        if (frame_contents_are_ours(f)) {
            if (int err = visit_frame(f, callee, visit, arg, innermost_stack_top)) {
                return err;
            }
        }
    }
    return 0;
}

}  // namespace syncless
