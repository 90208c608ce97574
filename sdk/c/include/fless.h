/*
 * fless SDK for C: write fl_main, get the FunLess ABI for free.
 *
 *   #include "fless.h"
 *   int fl_main(const char *args, size_t len) {
 *       return fl_respond("{\"ok\":true}");
 *   }
 *
 * The SDK's fless.c exports __invoke: it fetches the JSON arguments (a
 * NUL-terminated copy, len bytes), calls fl_main, and passes on what it
 * answered. fl_main returns fl_respond(json) or fl_error(message).
 *
 * Also here: a small JSON reader that walks the argument text in place
 * (no allocation, no tree) and a growable buffer to write JSON output.
 */
#ifndef FLESS_H
#define FLESS_H

#include <stddef.h>
#include <stdint.h>

#include "fl_imps.h"

/* Your function: the JSON arguments in, fl_respond or fl_error out. */
int fl_main(const char *args, size_t len);

/* Sets the JSON result; returns 0 for fl_main to return. */
int fl_respond(const char *json);
int fl_respond_n(const char *json, size_t len);
/* Sets the error message (the caller gets a 422 with it); returns 1. */
int fl_error(const char *message);
/* printf-style fl_error. */
int fl_errorf(const char *format, ...) __attribute__((format(printf, 1, 2)));
/* One log line for the host. */
void fl_log(const char *message);

/* -- reading JSON ------------------------------------------------------------------ */

/* Skips spaces; returns the first character of the next token. */
const char *fl_json_ws(const char *p);
/* Skips one JSON value starting at p; NULL when it is malformed. */
const char *fl_json_skip(const char *p);
/* The value of key in the object at p (pointer into the text), NULL if absent. */
const char *fl_json_get(const char *object, const char *key);
/* Reads a number; returns 1 on success. */
int fl_json_number(const char *value, double *out);
/* Copies a string value, unescaped (\uXXXX as UTF-8), NUL-terminated; 1 on success. */
int fl_json_string(const char *value, char *out, size_t cap);
/*
 * Walks an array: start with *cursor = the array value; each call moves to the
 * next element and returns it, or NULL at the end (or on malformed input).
 */
const char *fl_json_next(const char **cursor);

/* -- writing JSON ------------------------------------------------------------------ */

typedef struct {
    char *data;
    size_t len, cap;
    int failed; /* out of memory: further writes are dropped */
} fl_buf;

void fl_buf_append(fl_buf *buf, const char *text, size_t len);
void fl_buf_printf(fl_buf *buf, const char *format, ...) __attribute__((format(printf, 2, 3)));
/* Appends text as a quoted, escaped JSON string. */
void fl_buf_string(fl_buf *buf, const char *text);
/* Appends a number the way JSON wants it (integers without a fraction). */
void fl_buf_number(fl_buf *buf, double value);
void fl_buf_free(fl_buf *buf);

#endif
