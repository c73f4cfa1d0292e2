#include "dns_errors.hpp"

#include <ares.h>
#include <netdb.h>

#include "../scheduler/py_ref.hpp"

namespace syncless::io {

namespace {

// Pending lookups of a channel that configure_dns() or a fork replaced: a
// temporary failure, so callers that retry on EAI_AGAIN do the right thing.
const char* const dropped_message =
    "Temporary failure in name resolution (the resolver was reconfigured or reset)";

int gai_code(int status) noexcept {
    switch (status) {
        case ARES_ENOTFOUND:
        case ARES_EBADNAME:
            return EAI_NONAME;
        case ARES_ENODATA:
            return EAI_NODATA;
        case ARES_ETIMEOUT:
        case ARES_ECONNREFUSED:
        case ARES_ESERVFAIL:
        case ARES_EDESTRUCTION:
            return EAI_AGAIN;
        case ARES_ENOMEM:
            return EAI_MEMORY;
        case ARES_EBADFAMILY:
            return EAI_FAMILY;
        default:
            return EAI_FAIL;  // glibc's NO_RECOVERY: FORMERR, NOTIMP, REFUSED, bad answers
    }
}

int host_code(int status) noexcept {
    switch (status) {
        case ARES_ENOTFOUND:
        case ARES_EBADNAME:
            return HOST_NOT_FOUND;
        case ARES_ENODATA:
            return NO_DATA;
        case ARES_ETIMEOUT:
        case ARES_ECONNREFUSED:
        case ARES_ESERVFAIL:
        case ARES_EDESTRUCTION:
            return TRY_AGAIN;
        default:
            return NO_RECOVERY;
    }
}

PyObject* raise_socket_error(const char* name, int code, const char* message) noexcept {
    Ref module = Ref::steal(PyImport_ImportModule("_socket"));
    Ref type = module ? Ref::steal(PyObject_GetAttrString(module.get(), name)) : Ref();
    Ref args = type ? Ref::steal(Py_BuildValue("(is)", code, message)) : Ref();
    if (args) {
        PyErr_SetObject(type.get(), args.get());
    }
    return nullptr;
}

}  // namespace

PyObject* raise_gai_error(int ares_status) noexcept {
    int code = gai_code(ares_status);
    return raise_socket_error(
        "gaierror", code, ares_status == ARES_EDESTRUCTION ? dropped_message : gai_strerror(code));
}

PyObject* raise_host_error(int ares_status) noexcept {
    if (ares_status == ARES_ENOMEM) {
        return PyErr_NoMemory();
    }
    int code = host_code(ares_status);
    return raise_socket_error(
        "herror", code, ares_status == ARES_EDESTRUCTION ? dropped_message : hstrerror(code));
}

}  // namespace syncless::io
