/* pare/status.h - status codes and the error context every fallible call fills.
 *
 * Every library function that can fail returns a pare_status and, when it
 * is not PARE_OK, writes a one-line message (no trailing newline) into the
 * caller's pare_error. The library never prints, exits or aborts.
 *
 *     pare_error err;
 *     pare_model *m;
 *     if (pare_model_load("net.onnx", NULL, &m, &err) != PARE_OK)
 *         fprintf(stderr, "pare-inspect: net.onnx: %s\n", err.msg);
 */
#ifndef PARE_STATUS_H
#define PARE_STATUS_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pare_status {
    PARE_OK = 0,
    PARE_ERR_IO,          /* a file could not be opened, read or written */
    PARE_ERR_FORMAT,      /* bytes that are not what they claim to be */
    PARE_ERR_NOMEM,       /* an allocation failed */
    PARE_ERR_INVALID,     /* a well-formed model or tensor that breaks a rule */
    PARE_ERR_UNSUPPORTED, /* valid, but not implemented here */
    PARE_ERR_LIMIT,       /* a size or safety limit was reached */
    PARE_ERR_ARG,         /* a bad argument from the caller */
    PARE_ERR_RUNTIME      /* a failure while executing a model */
} pare_status;

#define PARE_ERROR_MSG_MAX 1024

typedef struct pare_error {
    pare_status status;
    char msg[PARE_ERROR_MSG_MAX];
} pare_error;

/* A short, static description of a status ("out of memory"). */
const char *pare_strerror(pare_status status);

/* Records status and a printf-style message in err (err may be NULL) and
 * returns status, so that `return pare_error_set(err, ...)` reads well. */
pare_status pare_error_set(pare_error *err, pare_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Puts "prefix: " in front of the message already in err. Returns err->status. */
pare_status pare_error_prefix(pare_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Clears err to PARE_OK with an empty message. */
void pare_error_clear(pare_error *err);

#ifdef __cplusplus
}
#endif
#endif
