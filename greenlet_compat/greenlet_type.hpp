// The greenlet.greenlet type object and the setters the C API shares.
#pragma once
#include "greenlet_object.hpp"

namespace syncless::greenlet_face {

int set_run(PyGreenlet* self, PyObject* run);
int set_parent(PyGreenlet* self, PyObject* parent);

}  // namespace syncless::greenlet_face
