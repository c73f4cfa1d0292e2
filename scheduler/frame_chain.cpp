// The only file that reads CPython's internal frame layout; the headers of
// the version compiled against describe it.
#include "frame_chain.hpp"

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

}  // namespace

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

}  // namespace syncless
