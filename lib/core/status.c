#include <stdio.h>
#include <string.h>
#include "pare/status.h"

const char *pare_strerror(pare_status status)
{
    switch (status) {
    case PARE_OK: return "success";
    case PARE_ERR_IO: return "input/output error";
    case PARE_ERR_FORMAT: return "malformed data";
    case PARE_ERR_NOMEM: return "out of memory";
    case PARE_ERR_INVALID: return "invalid model or tensor";
    case PARE_ERR_UNSUPPORTED: return "not supported";
    case PARE_ERR_LIMIT: return "limit exceeded";
    case PARE_ERR_ARG: return "bad argument";
    case PARE_ERR_RUNTIME: return "runtime failure";
    }
    return "unknown status";
}

pare_status pare_error_set(pare_error *err, pare_status status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->status = status;
    }
    return status;
}

pare_status pare_error_prefix(pare_error *err, const char *fmt, ...)
{
    if (!err)
        return PARE_ERR_ARG;
    char prefix[PARE_ERROR_MSG_MAX];
    char old[PARE_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t pl = strlen(prefix);
    if (pl > sizeof err->msg - 3)
        pl = sizeof err->msg - 3;
    memcpy(err->msg, prefix, pl);
    memcpy(err->msg + pl, ": ", 2);
    size_t ol = strlen(old);
    if (ol > sizeof err->msg - pl - 3)
        ol = sizeof err->msg - pl - 3;
    memcpy(err->msg + pl + 2, old, ol);
    err->msg[pl + 2 + ol] = '\0';
    return err->status;
}

void pare_error_clear(pare_error *err)
{
    if (err) {
        err->status = PARE_OK;
        err->msg[0] = '\0';
    }
}
