#pragma once
#include <Python.h>

namespace syncless::greenlet_face {
// Builds the greenlet._greenlet module object (once per process).
PyObject* create_greenlet_module();
}  // namespace syncless::greenlet_face
