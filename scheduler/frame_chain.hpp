// The interpreter frames of a suspended coroutine: what the collector may
// see of them, and how to discard those of one that will never run again.
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

// How many times C code entered the interpreter loop for these frames (a
// coroutine's own chain: its body's call is the first). Stackless's
// nesting_level is this less one.
int interpreter_entries(const struct _PyInterpreterFrame* innermost) noexcept;

// --- What the collector may see of a suspended coroutine's frames ---
//
// They are executing frames: the interpreter keeps their value-stack depth in
// a local variable of its loop, so CPython's collector never looks into
// them. traverse_frames() visits what those frames certainly own: each
// frame's specials, locals and cells, and the value stack of a frame that
// called the next one inline (its depth was saved then), and the innermost
// frame's value stack up to `innermost_stack_top` when the C function that
// suspended the coroutine vouches for it (it was called with arguments on
// that stack and has not returned; ignored unless it lies in that frame's
// stack). Any other value stack (a frame stopped in a call to C code may be
// past it, dropping the operands) and what C functions on the coroutine's
// stack hold stay unseen, so they only ever keep objects alive.
int traverse_frames(struct _PyInterpreterFrame* innermost, visitproc visit, void* arg,
                    PyObject* const* innermost_stack_top) noexcept;

}  // namespace syncless
