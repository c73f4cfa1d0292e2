#include "socket_ops.hpp"

#include <structmember.h>
#include <sys/socket.h>

#include <cerrno>
#include <climits>
#include <cstddef>
#include <memory>
#include <new>

#include "fd_watch.hpp"

namespace syncless::io {

namespace {

// The head of CPython's PySocketSockObject (Modules/socketmodule.h), the
// same in 3.11-3.13; register_socket_class() checks it against fileno().
struct SocketHead {
    PyObject_HEAD
    int sock_fd;
};

PyTypeObject* socket_class = nullptr;
Py_ssize_t timeout_offset = 0;
Py_ssize_t drained_offset = 0;

int fd_of(PyObject* sock) noexcept { return reinterpret_cast<SocketHead*>(sock)->sock_fd; }

PyObject*& slot(PyObject* sock, Py_ssize_t offset) noexcept {
    return *reinterpret_cast<PyObject**>(reinterpret_cast<char*>(sock) + offset);
}

// The socket's own timeout: -1 for None (wait forever). settimeout() keeps
// a float there; anything else a subclass stored is converted, or refused.
bool timeout_of(PyObject* sock, double* timeout) noexcept {
    PyObject* t = slot(sock, timeout_offset);
    if (t == nullptr || t == Py_None) {
        *timeout = -1.0;
        return true;
    }
    if (PyFloat_CheckExact(t)) {
        *timeout = PyFloat_AS_DOUBLE(t);
        return true;
    }
    return parse_timeout(t, timeout);
}

// The last recv returned less than asked: the socket is most likely empty,
// so the next one waits for readiness first instead of paying for a recv
// that says EAGAIN (request/response traffic hits this on every message).
bool recv_drained(PyObject* sock) noexcept { return slot(sock, drained_offset) == Py_True; }

void set_recv_drained(PyObject* sock, bool drained) noexcept {
    PyObject* value = drained ? Py_True : Py_False;
    PyObject*& held = slot(sock, drained_offset);
    if (held != value) {
        Py_XSETREF(held, Py_NewRef(value));
    }
}

bool check_socket(PyObject* const* args, Py_ssize_t nargs, const char* name) noexcept {
    if (socket_class == nullptr) {
        PyErr_SetString(PyExc_RuntimeError, "syncless: the coio socket class is not registered");
        return false;
    }
    if (nargs < 1 || !PyObject_TypeCheck(args[0], socket_class)) {
        PyErr_Format(PyExc_TypeError, "%s() needs a syncless.coio.socket", name);
        return false;
    }
    return true;
}

bool set_errno_error() noexcept {
    PyErr_SetFromErrno(PyExc_OSError);
    return false;
}

// Runs `call` (a non-blocking system call returning -1 with errno) until it
// succeeds, waiting for `what` on EAGAIN with the socket's timeout. Returns
// false with the exception set: socket errors as OSError subclasses, the
// timeout as TimeoutError('timed out'), BlockingIOError for timeout 0.
// A caller's own MSG_DONTWAIT (`dontwait`) means timeout 0 for this call.
template <class Call>
bool retry(PyObject* sock, short what, Call call, ssize_t* result, bool wait_first = false,
           bool dontwait = false) noexcept {
    for (;;) {
        int fd = fd_of(sock);
        if (fd < 0) {
            errno = EBADF;
            return set_errno_error();
        }
        double timeout = 0;
        if (!dontwait && !timeout_of(sock, &timeout)) {
            return false;
        }
        if (!wait_first || timeout == 0) {
            ssize_t n = call(fd);
            if (n >= 0) {
                *result = n;
                return true;
            }
            if (errno == EINTR) {
                if (PyErr_CheckSignals() < 0) {
                    return false;
                }
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                return set_errno_error();
            }
            if (timeout == 0) {
                return set_errno_error();
            }
        }
        wait_first = false;
        switch (wait_watched(fd, what, timeout)) {
            case WaitResult::error:
                return false;
            case WaitResult::timed_out:
                PyErr_SetString(PyExc_TimeoutError, "timed out");
                return false;
            case WaitResult::ready:
            case WaitResult::woken_early:
                break;
        }
    }
}

bool parse_flags(PyObject* const* args, Py_ssize_t nargs, Py_ssize_t at, int* flags) noexcept {
    *flags = 0;
    if (nargs <= at) {
        return true;
    }
    long value = PyLong_AsLong(args[at]);
    if (value == -1 && PyErr_Occurred()) {
        return false;
    }
    if (value < INT_MIN || value > INT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "flags out of range for a C int");
        return false;
    }
    *flags = static_cast<int>(value);
    return true;
}

bool parse_size(PyObject* arg, Py_ssize_t* out, const char* what) noexcept {
    *out = PyNumber_AsSsize_t(arg, PyExc_OverflowError);
    if (*out == -1 && PyErr_Occurred()) {
        return false;
    }
    if (*out < 0) {
        PyErr_Format(PyExc_ValueError, "negative %s in recv", what);
        return false;
    }
    return true;
}

// recv into data[0:size]; with MSG_WAITALL, until size bytes or EOF (the
// call itself is always MSG_DONTWAIT: waiting is the hub's).
bool receive(PyObject* sock, char* data, Py_ssize_t size, int flags, bool wait_first,
             ssize_t* got) noexcept {
    bool all = (flags & MSG_WAITALL) != 0;
    int call_flags = (flags & ~MSG_WAITALL) | MSG_DONTWAIT;
    *got = 0;
    do {
        ssize_t n;
        if (!retry(sock, EV_READ,
                   [&](int fd) {
                       return recv(fd, data + *got, static_cast<size_t>(size - *got), call_flags);
                   },
                   &n, wait_first && *got == 0, (flags & MSG_DONTWAIT) != 0)) {
            return false;
        }
        *got += n;
        if (n == 0) {
            break;
        }
    } while (all && *got < size);
    return true;
}

constexpr Py_ssize_t small_recv = 512;
constexpr Py_ssize_t scratch_size = 65536;

// Per thread; recv never switches between filling it and copying out.
char* scratch() noexcept {
    static thread_local std::unique_ptr<char[]> buffer;
    if (!buffer) {
        buffer.reset(new (std::nothrow) char[scratch_size]);
    }
    return buffer.get();
}

// recv(bufsize[, flags])
PyObject* sock_recv(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    if (!check_socket(args, nargs, "recv")) {
        return nullptr;
    }
    if (nargs < 2 || nargs > 3) {
        PyErr_Format(PyExc_TypeError, "recv() takes 1 or 2 arguments (%zd given)", nargs - 1);
        return nullptr;
    }
    Py_ssize_t size;
    int flags;
    if (!parse_size(args[1], &size, "buffersize") || !parse_flags(args, nargs, 2, &flags)) {
        return nullptr;
    }
    bool drained = recv_drained(args[0]);
    // After a short read the next one is likely short too: receive into the
    // thread's scratch buffer and copy out what came, instead of allocating
    // the whole size and shrinking it.
    char* data = drained && size > small_recv && size <= scratch_size ? scratch() : nullptr;
    Ref bytes;
    if (data == nullptr) {
        bytes = Ref::steal(PyBytes_FromStringAndSize(nullptr, size));
        if (!bytes) {
            return nullptr;
        }
        data = PyBytes_AS_STRING(bytes.get());
    }
    ssize_t got;
    if (!receive(args[0], data, size, flags, drained, &got)) {
        return nullptr;
    }
    set_recv_drained(args[0], got > 0 && got < size);
    if (!bytes) {
        return PyBytes_FromStringAndSize(data, got);
    }
    if (got != size) {
        PyObject* raw = bytes.release();
        if (_PyBytes_Resize(&raw, got) < 0) {
            return nullptr;
        }
        return raw;
    }
    return bytes.release();
}

// recv_into(buffer[, nbytes[, flags]])
PyObject* sock_recv_into(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    if (!check_socket(args, nargs, "recv_into")) {
        return nullptr;
    }
    if (nargs < 2 || nargs > 4) {
        PyErr_Format(PyExc_TypeError, "recv_into() takes 1 to 3 arguments (%zd given)", nargs - 1);
        return nullptr;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_WRITABLE) < 0) {
        return nullptr;
    }
    Py_ssize_t size = view.len;
    int flags = 0;
    bool ok = true;
    if (nargs > 2) {
        ok = parse_size(args[2], &size, "buffersize");
        if (ok && size == 0) {
            size = view.len;
        } else if (ok && size > view.len) {
            PyErr_SetString(PyExc_ValueError, "buffer too small for requested bytes");
            ok = false;
        }
    }
    ok = ok && parse_flags(args, nargs, 3, &flags);
    ssize_t got = 0;
    ok = ok && receive(args[0], static_cast<char*>(view.buf), size, flags, recv_drained(args[0]),
                       &got);
    PyBuffer_Release(&view);
    if (ok) {
        set_recv_drained(args[0], got > 0 && got < size);
    }
    return ok ? PyLong_FromSsize_t(got) : nullptr;
}

// send(data[, flags]) and sendall(data[, flags])
PyObject* send_generic(PyObject* const* args, Py_ssize_t nargs, bool all) {
    const char* name = all ? "sendall" : "send";
    if (!check_socket(args, nargs, name)) {
        return nullptr;
    }
    if (nargs < 2 || nargs > 3) {
        PyErr_Format(PyExc_TypeError, "%s() takes 1 or 2 arguments (%zd given)", name, nargs - 1);
        return nullptr;
    }
    int flags;
    if (!parse_flags(args, nargs, 2, &flags)) {
        return nullptr;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_SIMPLE) < 0) {
        return nullptr;
    }
    const char* data = static_cast<const char*>(view.buf);
    Py_ssize_t left = view.len;
    ssize_t sent = 0;
    bool ok = true;
    do {
        ok = retry(args[0], EV_WRITE,
                   [&](int fd) {
                       return send(fd, data, static_cast<size_t>(left), flags | MSG_DONTWAIT);
                   },
                   &sent, false, (flags & MSG_DONTWAIT) != 0);
        if (ok) {
            data += sent;
            left -= sent;
            // A long sendall must not keep Ctrl-C waiting.
            ok = !(all && left > 0 && PyErr_CheckSignals() < 0);
        }
    } while (ok && all && left > 0);
    PyBuffer_Release(&view);
    if (!ok) {
        return nullptr;
    }
    if (all) {
        Py_RETURN_NONE;
    }
    return PyLong_FromSsize_t(sent);
}

PyObject* sock_send(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    return send_generic(args, nargs, false);
}

PyObject* sock_sendall(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    return send_generic(args, nargs, true);
}

PyMethodDef socket_methods[] = {
    {"recv", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(sock_recv)), METH_FASTCALL,
     "recv(bufsize[, flags]) -> data\n\nWaits (parking only this tasklet) until data or EOF."},
    {"recv_into", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(sock_recv_into)), METH_FASTCALL,
     "recv_into(buffer[, nbytes[, flags]]) -> nbytes_read"},
    {"send", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(sock_send)), METH_FASTCALL,
     "send(data[, flags]) -> count"},
    {"sendall", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(sock_sendall)), METH_FASTCALL,
     "sendall(data[, flags])\n\nSends everything; the timeout applies to each wait."},
    {nullptr, nullptr, 0, nullptr},
};

// Where an object slot (`__slots__` entry) of cls lives; -1 with TypeError.
Py_ssize_t slot_offset(PyObject* cls, const char* name) noexcept {
    Ref descriptor = Ref::steal(PyObject_GetAttrString(cls, name));
    if (!descriptor) {
        return -1;
    }
    if (!PyObject_TypeCheck(descriptor.get(), &PyMemberDescr_Type) ||
        reinterpret_cast<PyMemberDescrObject*>(descriptor.get())->d_member->type != T_OBJECT_EX) {
        PyErr_Format(PyExc_TypeError, "the socket class needs a `%s` slot", name);
        return -1;
    }
    return reinterpret_cast<PyMemberDescrObject*>(descriptor.get())->d_member->offset;
}

}  // namespace

PyObject* register_socket_class(PyObject*, PyObject* cls) noexcept {
    if (!PyType_Check(cls)) {
        PyErr_SetString(PyExc_TypeError, "register_socket_class() needs a class");
        return nullptr;
    }
    Py_ssize_t timeout_at = slot_offset(cls, "_timeout");
    Py_ssize_t drained_at = timeout_at < 0 ? -1 : slot_offset(cls, "_recv_drained");
    if (drained_at < 0) {
        return nullptr;
    }
    // The fd must be where SocketHead says: check on a real socket.
    Ref probe = Ref::steal(PyObject_CallNoArgs(cls));
    if (!probe) {
        return nullptr;
    }
    Ref fileno = Ref::steal(PyObject_CallMethod(probe.get(), "fileno", nullptr));
    bool fd_matches = fileno && PyLong_AsLong(fileno.get()) == fd_of(probe.get());
    Ref closed = Ref::steal(PyObject_CallMethod(probe.get(), "close", nullptr));
    if (!fileno || !closed) {
        return nullptr;
    }
    if (!fd_matches) {
        PyErr_SetString(PyExc_RuntimeError,
                        "syncless: this CPython keeps a socket's fd where coio does not expect it");
        return nullptr;
    }
    timeout_offset = timeout_at;
    drained_offset = drained_at;
    Py_XSETREF(socket_class, reinterpret_cast<PyTypeObject*>(Py_NewRef(cls)));
    Py_RETURN_NONE;
}

bool add_socket_methods(PyObject* module) noexcept {
    for (PyMethodDef* def = socket_methods; def->ml_name != nullptr; ++def) {
        Ref function = Ref::steal(PyCFunction_New(def, nullptr));
        Ref method = function ? Ref::steal(PyInstanceMethod_New(function.get())) : Ref();
        Ref name = Ref::steal(PyUnicode_FromFormat("socket_%s", def->ml_name));
        if (!method || !name || PyObject_SetAttr(module, name.get(), method.get()) < 0) {
            return false;
        }
    }
    return true;
}

}  // namespace syncless::io
