// c-ares statuses as the socket module's exceptions, with the codes and
// messages glibc gives for the same failures.
#pragma once
#include <Python.h>

namespace syncless::io {

// A forward lookup's failure as socket.gaierror(EAI_*, gai_strerror());
// returns null.
PyObject* raise_gai_error(int ares_status) noexcept;

// A reverse lookup's failure as socket.herror(h_errno, hstrerror());
// returns null.
PyObject* raise_host_error(int ares_status) noexcept;

}  // namespace syncless::io
