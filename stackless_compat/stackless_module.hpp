#pragma once
#include <Python.h>

namespace syncless::stackless_face {
// Builds the _stackless module object (once per process).
PyObject* create_stackless_module();
}  // namespace syncless::stackless_face
