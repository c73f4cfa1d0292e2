// The hot methods of coio's socket class (recv, recv_into, send, sendall):
// the system call on the socket's fd, and on EAGAIN a wait that parks only
// the calling tasklet. The class itself is Python (syncless/coio_socket.py),
// a socket.socket subclass whose C-level timeout stays 0 (non-blocking) and
// whose own timeout lives in the `_timeout` slot.
#pragma once
#include <Python.h>

namespace syncless::io {

// Remembers the class and where its `_timeout` slot is; checks that the
// fd sits where this build expects it in socket objects.
PyObject* register_socket_class(PyObject* module, PyObject* cls) noexcept;

// The methods, as objects that bind like functions (instancemethod); null
// with an exception set on failure.
bool add_socket_methods(PyObject* module) noexcept;

}  // namespace syncless::io
