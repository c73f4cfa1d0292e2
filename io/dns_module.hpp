// The DNS functions of syncless._coio (used by syncless/_coio_dns.py).
#pragma once
#include <Python.h>

namespace syncless::io {

extern PyMethodDef dns_functions[];

}  // namespace syncless::io
