// Per-thread greenlet state: the main greenlet, the trace function, and the
// greenlets other threads asked this one to kill.
#pragma once
#include "greenlet_object.hpp"

namespace syncless::greenlet_face {

struct GreenletThread {
    ThreadCore* core;
    Ref main;                   // PyGreenlet
    Ref tracefunc;              // greenlet.settrace(); None is stored as null
    Ref current;                // PyGreenlet running now: the thread keeps it alive
    Ref origin;                 // who switched last, for the trace call in the target
    std::vector<Ref> deleteme;  // greenlets deallocated in another thread
};

extern SYNCLESS_STATIC_TLS thread_local GreenletThread* this_thread_state;
GreenletThread* this_thread_slow() noexcept;

// The calling thread's state, created (with its main greenlet) on first use.
// Null with an exception set when that fails. Kills queued by other threads
// run first.
inline GreenletThread* this_thread() noexcept {
    GreenletThread* t = this_thread_state;
    return t != nullptr && t->deleteme.empty() ? t : this_thread_slow();
}
// The calling thread's state if it exists; never creates it.
inline GreenletThread* this_thread_if_any() noexcept { return this_thread_state; }

// The greenlet running now in the calling thread (borrowed).
inline PyGreenlet* current_greenlet(GreenletThread* t) noexcept {
    return reinterpret_cast<PyGreenlet*>(t->current.get());
}

// The main greenlet of the thread a greenlet belongs to: itself for main
// greenlets, the one it was bound to at start, its parent lineage's before.
Greenlet* owning_main(Greenlet* g) noexcept;
// That thread's state; null once the thread exited.
GreenletThread* owning_thread(Greenlet* g) noexcept;

// Queues a greenlet (new reference taken) for the owner thread to kill.
void kill_in_owner_thread(GreenletThread* owner, PyGreenlet* g) noexcept;

Py_ssize_t pending_cleanup_count() noexcept;
// Main greenlets of threads not yet cleaned up after (greenlet's count).
Py_ssize_t total_main_greenlets() noexcept;

}  // namespace syncless::greenlet_face
