#pragma once
#include <Python.h>

namespace syncless::io {

PyObject* create_coio_module();

}  // namespace syncless::io
