// Switching between greenlets: argument passing, the walk to a live target,
// starting, finishing into the parent chain, throw and kill.
#pragma once
#include "greenlet_thread.hpp"

namespace syncless::greenlet_face {

// Delivers target->pending (or, when it is empty, the error set now) to
// target, from the running family f. Returns what the calling greenlet
// receives when switched back to: a new reference, or null with an
// exception set.
PyObject* switch_greenlet(Family* f, Greenlet* target) noexcept;

// greenlet.throw(typ, val, tb) with greenlet's argument checks.
PyObject* throw_greenlet(Family* f, Greenlet* target, PyObject* typ, PyObject* val,
                         PyObject* tb) noexcept;

// Raises GreenletExit in a suspended greenlet of the running family f, with
// the current greenlet as its parent for the duration, so the kill returns
// here. A greenlet of an ended family of this thread (its stack is intact)
// dies the same way, adopted by f.
void kill_greenlet(Family* f, Greenlet* target) noexcept;

// Turns received switch arguments into switch()'s return value.
PyObject* switch_result(SwitchArgs&& args) noexcept;

Coroutine* greenlet_body(Coroutine* co) noexcept;

}  // namespace syncless::greenlet_face
