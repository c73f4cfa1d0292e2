// A one-shot wake-up that any thread may fire: the calling tasklet waits on
// it (parking only itself) until fire() runs, here or in another OS thread
// (with the GIL held). The thread pool hands results back through it.
#pragma once
#include <Python.h>

#include "hub.hpp"

namespace syncless::io {

struct Waker {
    PyObject ob_base;
    Hub* hub;              // of the thread that made it
    Tasklet* waiting;      // the tasklet parked in wait(), if any (borrowed)
    bool fired;
};

extern PyTypeObject Waker_Type;

// In the hub's thread: wakes the waiting tasklet of a waker fired elsewhere.
void waker_deliver(Waker* w) noexcept;

}  // namespace syncless::io
