// Letting the GIL go around a blocking wait, from C++ frames.
#pragma once
#include <Python.h>
#include <cxxabi.h>
#include <unistd.h>

#include <exception>

#include "interp_state.hpp"

namespace syncless {

// Taking the GIL back once the interpreter finalizes ends the thread with a
// forced unwind, which std::terminate()s in noexcept frames: such a thread
// sleeps for good instead, as CPython's own daemon threads would stop.
inline void park_if_finalizing() noexcept {
    while (interpreter_finalizing()) {
        pause();
    }
}

// Runs `call`, which enters Python, at the bottom of a coroutine's stack. A
// daemon thread that takes the GIL while the interpreter finalizes is ended
// by CPython with pthread_exit(), a forced unwind that std::terminate()s at
// the first noexcept frame: it stops here and the thread sleeps for good.
// (The forced unwind is no C++ object: its handler binds a null reference,
// which UBSan would report.)
template <class Call>
__attribute__((no_sanitize_undefined)) auto call_python(Call&& call) noexcept
    -> decltype(call()) {
    try {
        return call();
    } catch (abi::__forced_unwind&) {
        for (;;) {
            pause();
        }
    } catch (...) {
        // Any other exception out of Python ends the process, as in greenlet;
        // terminating inside the handler names it in the message.
        std::terminate();
    }
}

// Py_BEGIN/END_ALLOW_THREADS as a scope, parking instead of unwinding.
class GilReleased {
public:
    GilReleased() noexcept : saved_(PyEval_SaveThread()) {}
    ~GilReleased() {
        park_if_finalizing();
        PyEval_RestoreThread(saved_);
    }
    GilReleased(const GilReleased&) = delete;
    GilReleased& operator=(const GilReleased&) = delete;

private:
    PyThreadState* saved_;
};

}  // namespace syncless
