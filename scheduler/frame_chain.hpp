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
// a local variable of its loop (3.11 even leaves a stale one in the frame),
// so CPython's collector never looks into them. traverse_frames() visits what
// those frames certainly own: each frame's specials, locals and cells; the
// value stack of a frame that called the next one inline (its depth was
// saved then); and the value stack of a frame suspended in a call or a
// for-loop step, at the depth its code's call-site table gives. Anything
// else they hold (a stack whose depth is unknown, what C functions on the
// coroutine's stack hold) stays unseen, so it only ever keeps objects alive.
int traverse_frames(struct _PyInterpreterFrame* innermost, visitproc visit, void* arg) noexcept;

// Asks for the call-site tables that traverse_frames() will need for these
// frames; cheap when they exist. Call it where a coroutine is about to be
// suspended unreferenced (or becomes so). Tables are made later, outside any
// switch, by install_frame_table() (the stackless face does it when a
// collection starts).
void request_frame_tables(struct _PyInterpreterFrame* innermost) noexcept;
// The code objects asked for since the last call: a new list; null when
// there are none (or with an exception set when the list cannot be made).
PyObject* take_frame_table_requests() noexcept;
// Installs the table of `code` from `sites`, a list of (offset in code units,
// stack depth, oparg, kind) with kind 0 a for-loop step, 1 a call, 2 a call
// with keyword names on the stack (syncless._frame_sites). Returns -1 with an
// exception set on bad input; the code then keeps an empty table.
int install_frame_table(PyObject* code, PyObject* sites) noexcept;

}  // namespace syncless
