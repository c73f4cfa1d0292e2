// The interpreter frames of a coroutine that will never run again.
//
// A suspended coroutine's interpreter frames live in its frame chunks. When
// it is discarded without unwinding (its thread exited, or the interpreter
// is finalizing), nothing will ever clear those frames. Their frame objects
// (made for gr_frame, tracebacks, f_back) point into the chunks, so the
// chunks may only be freed once no one else holds such a frame object.
#pragma once
#include <Python.h>

namespace syncless {

// True if a frame object of a frame this coroutine owns is referenced from
// outside its interpreter frame (freeing the frame memory would leave that
// object dangling).
bool frame_objects_held_elsewhere(struct _PyInterpreterFrame* innermost) noexcept;

// Drops each owned interpreter frame's reference to its frame object, which
// then frees it. Call only when frame_objects_held_elsewhere() is false, and
// before the frame memory goes. The frames' other references are leaked.
void release_frame_objects(struct _PyInterpreterFrame* innermost) noexcept;

}  // namespace syncless
