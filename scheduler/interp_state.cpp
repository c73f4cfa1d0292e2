#include "interp_state.hpp"

#include "frame_chain.hpp"
#include "stack_pool.hpp"

#if PY_VERSION_HEX >= 0x030C0000
#if defined(Py_C_RECURSION_LIMIT)
#define SYNCLESS_C_RECURSION_LIMIT Py_C_RECURSION_LIMIT
#else
#define SYNCLESS_C_RECURSION_LIMIT C_RECURSION_LIMIT
#endif
#endif

namespace syncless {

namespace {

void set_current_frame(PyThreadState* tstate, struct _PyInterpreterFrame* frame) {
#if SYNCLESS_HAS_CFRAME
    tstate->cframe->current_frame = frame;
#else
    tstate->current_frame = frame;
#endif
}

}  // namespace

int python_recursion_depth(PyThreadState* tstate) noexcept {
#if PY_VERSION_HEX >= 0x030C0000
    return tstate->py_recursion_limit - tstate->py_recursion_remaining;
#else
    return tstate->recursion_limit - tstate->recursion_remaining;
#endif
}

struct _PyInterpreterFrame* current_frame_of(PyThreadState* tstate) noexcept {
#if SYNCLESS_HAS_CFRAME
    return tstate->cframe->current_frame;
#else
    return tstate->current_frame;
#endif
}

void InterpState::copy_depth_and_tracing(PyThreadState* tstate) noexcept {
    py_recursion_depth_ = python_recursion_depth(tstate);
#if PY_VERSION_HEX < 0x030C0000
    use_tracing_ = tstate->cframe->use_tracing;
#else
    c_recursion_depth_ = SYNCLESS_C_RECURSION_LIMIT - tstate->c_recursion_remaining;
#endif
}

void InterpState::save(PyThreadState* tstate) noexcept {
    context_ = tstate->context;
    tstate->context = nullptr;
#if SYNCLESS_HAS_CFRAME
    cframe_ = tstate->cframe;
#endif
    copy_depth_and_tracing(tstate);
    current_frame_ = current_frame_of(tstate);
    datastack_chunk_ = tstate->datastack_chunk;
    datastack_top_ = tstate->datastack_top;
    datastack_limit_ = tstate->datastack_limit;
    top_frame_ = nullptr;
    exc_info_ = tstate->exc_info;
    exc_state_ = tstate->exc_state;
    tstate->exc_state.exc_value = nullptr;
#if PY_VERSION_HEX < 0x030C0000
    trash_delete_nesting_ = tstate->trash_delete_nesting;
#elif PY_VERSION_HEX < 0x030D0000
    trash_delete_nesting_ = tstate->trash.delete_nesting;
#else
    delete_later_ = tstate->delete_later;
    critical_section_ = tstate->critical_section;
#endif
}

void InterpState::restore(PyThreadState* tstate) noexcept {
    tstate->context = context_;
    context_ = nullptr;
    // Invalidates ContextVar caches keyed on the version.
    tstate->context_ver++;
#if SYNCLESS_HAS_CFRAME
    tstate->cframe = cframe_;
#endif
#if PY_VERSION_HEX < 0x030C0000
    tstate->cframe->use_tracing = use_tracing_;
    tstate->recursion_remaining = tstate->recursion_limit - py_recursion_depth_;
#else
    tstate->py_recursion_remaining = tstate->py_recursion_limit - py_recursion_depth_;
    tstate->c_recursion_remaining = SYNCLESS_C_RECURSION_LIMIT - c_recursion_depth_;
#endif
    set_current_frame(tstate, current_frame_);
    tstate->datastack_chunk = datastack_chunk_;
    tstate->datastack_top = datastack_top_;
    tstate->datastack_limit = datastack_limit_;
    top_frame_ = nullptr;
    tstate->exc_info = exc_info_ != nullptr ? exc_info_ : &tstate->exc_state;
    tstate->exc_state = exc_state_;
    exc_state_.exc_value = nullptr;
#if PY_VERSION_HEX < 0x030C0000
    tstate->trash_delete_nesting = trash_delete_nesting_;
#elif PY_VERSION_HEX < 0x030D0000
    tstate->trash.delete_nesting = trash_delete_nesting_;
#else
    tstate->delete_later = delete_later_;
    delete_later_ = nullptr;
    tstate->critical_section = critical_section_;
#endif
}

void InterpState::init_new(PyThreadState* tstate, const StackSlot& slot, std::size_t chunk_size,
                           bool fresh_depth) noexcept {
    auto* chunk = reinterpret_cast<_PyStackChunk*>(slot.stack_top);
    chunk->previous = nullptr;
    chunk->size = chunk_size;
    chunk->top = 0;
    datastack_chunk_ = chunk;
    // data[0] stays unused, as CPython's own root chunk: popping a frame at
    // data[0] would free the chunk.
    datastack_top_ = &chunk->data[1];
    datastack_limit_ = reinterpret_cast<PyObject**>(slot.stack_top + chunk_size);
    current_frame_ = nullptr;
    top_frame_ = nullptr;
    Py_CLEAR(exc_state_.exc_value);
    exc_state_.previous_item = nullptr;
    exc_info_ = nullptr;
#if SYNCLESS_HAS_CFRAME
    cframe_ = &tstate->root_cframe;
#endif
    copy_depth_and_tracing(tstate);
    if (fresh_depth) {
        py_recursion_depth_ = 0;
#if PY_VERSION_HEX >= 0x030C0000
        c_recursion_depth_ = 0;
#endif
    }
#if PY_VERSION_HEX < 0x030D0000
    trash_delete_nesting_ = 0;
#else
    delete_later_ = nullptr;
    critical_section_ = 0;
#endif
}

#if SYNCLESS_HAS_CFRAME
void InterpState::enter_new_cframe(PyThreadState* tstate, _PyCFrame* local) noexcept {
    *local = *tstate->cframe;
    local->current_frame = nullptr;
    local->previous = &tstate->root_cframe;
    tstate->cframe = local;
}
#endif

#if PY_VERSION_HEX < 0x030C0000
void InterpState::inherit_tracing(PyThreadState* origin) noexcept {
    use_tracing_ = origin->cframe->use_tracing;
}
#endif

bool InterpState::discard_frames() noexcept {
    top_frame_ = nullptr;
    if (frame_objects_held_elsewhere(current_frame_)) {
        current_frame_ = nullptr;
        datastack_chunk_ = nullptr;
        return false;
    }
    release_frame_objects(current_frame_);
    // The last chunk of the chain (previous == NULL) is the root chunk in the
    // stack slot; CPython allocated any others through the arena allocator.
    _PyStackChunk* chunk = datastack_chunk_;
    if (chunk != nullptr && chunk->previous != nullptr) {
        PyObjectArenaAllocator arena;
        PyObject_GetArenaAllocator(&arena);
        while (chunk->previous != nullptr) {
            _PyStackChunk* previous = chunk->previous;
            arena.free(arena.ctx, chunk, chunk->size);
            chunk = previous;
        }
    }
    datastack_chunk_ = nullptr;
    datastack_top_ = nullptr;
    datastack_limit_ = nullptr;
    current_frame_ = nullptr;
    return true;
}

PyFrameObject* InterpState::frame_object(PyThreadState* tstate) noexcept {
    if (top_frame_ != nullptr || current_frame_ == nullptr) {
        return top_frame_;
    }
    // PyThreadState_GetFrame is the public way to make a frame object; point
    // the thread at our frame for the call. The collector stays off so no
    // finalizer runs while the thread's frame pointer is borrowed.
    int gc_was_enabled = PyGC_Disable();
    struct _PyInterpreterFrame* running = current_frame_of(tstate);
    set_current_frame(tstate, current_frame_);
    PyFrameObject* frame = PyThreadState_GetFrame(tstate);
    set_current_frame(tstate, running);
    if (gc_was_enabled) {
        PyGC_Enable();
    }
    Py_XDECREF(frame);  // the interpreter frame holds it
    top_frame_ = frame;
    return frame;
}

void InterpState::set_context(PyObject* owned) noexcept {
    PyObject* old = context_;
    context_ = owned;
    Py_XDECREF(old);
}

int InterpState::traverse(visitproc visit, void* arg) noexcept {
    Py_VISIT(context_);
    Py_VISIT(exc_state_.exc_value);
    return 0;
}

int InterpState::traverse_frames(visitproc visit, void* arg,
                                 PyObject* const* innermost_stack_top) noexcept {
    return syncless::traverse_frames(current_frame_, visit, arg, innermost_stack_top);
}

void InterpState::clear() noexcept {
    Py_CLEAR(context_);
    Py_CLEAR(exc_state_.exc_value);
}

}  // namespace syncless
