/*
 * The benchmark's hello, shared by both ABIs: JSON args in, JSON out.
 *
 *   {"name": "x"} -> {"message": "Hello, x!"}     (no "name": "world")
 *
 * The args are scanned as JSON, not searched for a substring: the top-level
 * object's members are walked, strings with their escapes, nested values
 * skipped, so that the work is the work of a real (small) JSON function.
 */
#ifndef GREET_H
#define GREET_H

#include <stddef.h>
#include <stdio.h>
#include <string.h>

static const char *skip_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

/* Past a JSON string starting at its quote; NULL if unterminated. */
static const char *skip_string(const char *p) {
    for (p++; *p != '\0'; p++) {
        if (*p == '\\') {
            if (*++p == '\0') return NULL;
        } else if (*p == '"') {
            return p + 1;
        }
    }
    return NULL;
}

/* Past any JSON value; NULL if it is malformed. */
static const char *skip_value(const char *p) {
    p = skip_ws(p);
    if (*p == '"') return skip_string(p);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (*p != '\0') {
            if (*p == '"') {
                if ((p = skip_string(p)) == NULL) return NULL;
                continue;
            }
            if (*p == '{' || *p == '[') depth++;
            if (*p == '}' || *p == ']') {
                if (--depth == 0) return p + 1;
            }
            p++;
        }
        return NULL;
    }
    while (*p != '\0' && *p != ',' && *p != '}' && *p != ']' && *p != ' ') p++;
    return p;
}

/*
 * Writes the greeting for the JSON object at args to out; its length, or -1
 * if args is not a JSON object.
 */
static int greet(const char *args, char *out, size_t cap) {
    const char *name = "world";
    size_t name_len = 5;
    const char *p = skip_ws(args);
    if (*p++ != '{') return -1;
    for (p = skip_ws(p); *p != '}';) {
        if (*p != '"') return -1;
        const char *key = p + 1, *end = skip_string(p);
        if (end == NULL) return -1;
        p = skip_ws(end);
        if (*p++ != ':') return -1;
        p = skip_ws(p);
        const char *value = p;
        if ((p = skip_value(p)) == NULL) return -1;
        /* A string "name" goes back into JSON as it came, escapes and all. */
        if (end - key == 5 && memcmp(key, "name\"", 5) == 0 && *value == '"') {
            name = value + 1;
            name_len = (size_t)(p - value - 2);
        }
        p = skip_ws(p);
        if (*p == ',') p = skip_ws(p + 1);
        else if (*p != '}') return -1;
    }
    if (name_len > 256) name_len = 256;
    return snprintf(out, cap, "{\"message\":\"Hello, %.*s!\"}", (int)name_len, name);
}

#endif
