/* pare/report.h - JSON and text-table writers for reports.
 *
 * Both writers build their text in memory and keep the first error they
 * meet (out of memory, a key where a value belongs, an unclosed container),
 * so a report is written as a straight run of calls and checked once:
 *
 *     pare_json *j;
 *     if (pare_json_new(PARE_JSON_PRETTY, &j, &err)) ...;
 *     pare_json_begin_object(j);
 *     pare_json_kv_string(j, "schema", "pare-inspect/1");
 *     pare_json_key(j, "shape");
 *     pare_json_begin_array_flat(j);          // [1, 3, 224, 224] on one line
 *     for (...) pare_json_int(j, dims[i]);
 *     pare_json_end_array(j);
 *     pare_json_end_object(j);
 *     const char *text; size_t len;
 *     if (pare_json_finish(j, &text, &len, &err)) ...;   // text owned by j
 *     fwrite(text, 1, len, stdout);
 *     pare_json_free(j);
 *
 * Output is deterministic: keys are written in call order, integers in
 * decimal, doubles in the shortest form that reads back to the same value
 * ("0.1", "1e-07", "3"), NaN and infinities as null, -0 as 0, whatever the
 * locale. Strings are escaped per RFC 8259 (", \, control characters);
 * bytes that are not valid UTF-8 become U+FFFD, so the text is always valid
 * UTF-8 JSON; U+2028 and U+2029 are escaped too.
 */
#ifndef PARE_REPORT_H
#define PARE_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "pare/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- JSON ---- */

typedef struct pare_json pare_json;

enum {
    PARE_JSON_PRETTY = 1 /* newlines and two-space indents; else one compact line */
};

/* New writer. Free with pare_json_free. */
pare_status pare_json_new(unsigned flags, pare_json **out, pare_error *err);
/* NULL-safe. Frees the writer and its text. */
void pare_json_free(pare_json *j);

void pare_json_begin_object(pare_json *j);
/* An object written on one line even when pretty (for small records). */
void pare_json_begin_object_flat(pare_json *j);
void pare_json_end_object(pare_json *j);
void pare_json_begin_array(pare_json *j);
/* An array written on one line even when pretty (for short lists of scalars). */
void pare_json_begin_array_flat(pare_json *j);
void pare_json_end_array(pare_json *j);
/* Key of the next member; only inside an object, before each value. */
void pare_json_key(pare_json *j, const char *key);

void pare_json_string(pare_json *j, const char *s);          /* NULL writes null */
void pare_json_string_n(pare_json *j, const char *s, size_t len);
void pare_json_int(pare_json *j, int64_t v);
void pare_json_uint(pare_json *j, uint64_t v);
void pare_json_double(pare_json *j, double v);               /* shortest round-trip form */
void pare_json_double_sig(pare_json *j, double v, int digits); /* at most `digits` significant */
void pare_json_bool(pare_json *j, bool v);
void pare_json_null(pare_json *j);

/* key + value in one call. */
void pare_json_kv_string(pare_json *j, const char *key, const char *s);
void pare_json_kv_int(pare_json *j, const char *key, int64_t v);
void pare_json_kv_uint(pare_json *j, const char *key, uint64_t v);
void pare_json_kv_double(pare_json *j, const char *key, double v);
void pare_json_kv_bool(pare_json *j, const char *key, bool v);
void pare_json_kv_null(pare_json *j, const char *key);

/* Checks that exactly one complete value was written and every container
 * closed, then ends the text with a newline. *text (NUL-terminated, *len
 * bytes without the NUL) stays owned by j until pare_json_free. On error
 * (the first one met, or an incomplete document) err says which. */
pare_status pare_json_finish(pare_json *j, const char **text, size_t *len, pare_error *err);

/* Appends s, escaped as a JSON string with its quotes, to a caller's
 * buffer: at most size-1 bytes and a NUL. Returns the length the full
 * escaped text needs (like snprintf). */
size_t pare_json_escape(const char *s, size_t len, char *buf, size_t size);

/* Formats v the way pare_json_double does (digits 0: shortest round-trip)
 * into buf (32 bytes are always enough). Returns buf. */
char *pare_json_format_double(double v, int digits, char *buf, size_t size);

/* ---- text tables ---- */

typedef struct pare_table pare_table;

typedef enum pare_align { PARE_ALIGN_LEFT = 0, PARE_ALIGN_RIGHT = 1 } pare_align;

/* New table of ncols columns. Free with pare_table_free. */
pare_status pare_table_new(size_t ncols, pare_table **out, pare_error *err);
void pare_table_free(pare_table *t);
/* Header title and alignment of column col. A table with no titles prints no header line. */
void pare_table_column(pare_table *t, size_t col, const char *title, pare_align align);
/* Starts a new row; cells are then added left to right (missing ones stay empty). */
void pare_table_row(pare_table *t);
/* Adds a cell to the current row (printf-style; the text is copied, with
 * newlines and tabs made spaces and other control characters '?'). */
void pare_table_cell(pare_table *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Renders into a malloc'd text (caller frees): each line starts with
 * `indent` spaces, columns are two spaces apart and padded by display width
 * (UTF-8 code points), trailing blanks are trimmed, every line ends in '\n'. */
pare_status pare_table_render(pare_table *t, int indent, char **text, size_t *len,
                              pare_error *err);

#ifdef __cplusplus
}
#endif
#endif
