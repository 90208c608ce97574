/* The fless SDK for C: __invoke around fl_main, and the JSON helpers of fless.h. */
#include "fless.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int answered;

int fl_respond_n(const char *json, size_t len) {
    __insert_response(json, (int32_t)len);
    answered = 1;
    return 0;
}

int fl_respond(const char *json) { return fl_respond_n(json, strlen(json)); }

int fl_error(const char *message) {
    __insert_error(message, (int32_t)strlen(message));
    answered = 1;
    return 1;
}

int fl_errorf(const char *format, ...) {
    char message[512];
    va_list ap;
    va_start(ap, format);
    vsnprintf(message, sizeof message, format, ap);
    va_end(ap);
    return fl_error(message);
}

void fl_log(const char *message) { __console_log(message, (int32_t)strlen(message)); }

FL_EXPORT(__invoke) int32_t fl_invoke(int32_t len) {
    char *args = malloc((size_t)len + 1);
    if (args == NULL) return fl_error("out of memory reading the arguments");
    __get_input_data(args);
    args[len] = '\0';
    answered = 0;
    int status = fl_main(args, (size_t)len);
    free(args);
    if (!answered) {
        // A function that forgot to answer must not look like a success with no output.
        return status ? fl_error("the function failed without a message")
                      : fl_error("the function returned without calling fl_respond");
    }
    return status ? 1 : 0;
}

/* -- reading JSON ------------------------------------------------------------------ */

const char *fl_json_ws(const char *p) {
    while (p && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

static const char *skip_string(const char *p) {
    for (p++; *p != '"'; p++) {
        if (*p == '\0') return NULL;
        if (*p == '\\' && *++p == '\0') return NULL;
    }
    return p + 1;
}

const char *fl_json_skip(const char *p) {
    p = fl_json_ws(p);
    if (p == NULL || *p == '\0') return NULL;
    if (*p == '"') return skip_string(p);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        do {
            if (*p == '"') {
                p = skip_string(p);
                if (p == NULL) return NULL;
                continue;
            }
            if (*p == '{' || *p == '[') depth++;
            else if (*p == '}' || *p == ']') depth--;
            else if (*p == '\0') return NULL;
            p++;
        } while (depth > 0);
        return p;
    }
    const char *start = p;
    while (*p && strchr(",]} \t\r\n", *p) == NULL) p++;
    return p == start ? NULL : p;
}

const char *fl_json_get(const char *object, const char *key) {
    const char *p = fl_json_ws(object);
    if (p == NULL || *p != '{') return NULL;
    size_t key_len = strlen(key);
    p = fl_json_ws(p + 1);
    while (p && *p == '"') {
        const char *end = skip_string(p);
        if (end == NULL) return NULL;
        int same = (size_t)(end - p - 2) == key_len && memcmp(p + 1, key, key_len) == 0;
        p = fl_json_ws(end);
        if (*p != ':') return NULL;
        p = fl_json_ws(p + 1);
        if (same) return p;
        p = fl_json_ws(fl_json_skip(p));
        if (p == NULL || *p != ',') return NULL;
        p = fl_json_ws(p + 1);
    }
    return NULL;
}

int fl_json_number(const char *value, double *out) {
    const char *p = fl_json_ws(value);
    if (p == NULL || !(*p == '-' || (*p >= '0' && *p <= '9'))) return 0;
    char *end;
    *out = strtod(p, &end);
    return end != p;
}

static void put_utf8(char *out, size_t *n, size_t cap, unsigned code) {
    char bytes[4];
    size_t k;
    if (code < 0x80) { bytes[0] = (char)code; k = 1; }
    else if (code < 0x800) { bytes[0] = (char)(0xC0 | code >> 6); bytes[1] = (char)(0x80 | (code & 0x3F)); k = 2; }
    else if (code < 0x10000) { bytes[0] = (char)(0xE0 | code >> 12); bytes[1] = (char)(0x80 | ((code >> 6) & 0x3F)); bytes[2] = (char)(0x80 | (code & 0x3F)); k = 3; }
    else { bytes[0] = (char)(0xF0 | code >> 18); bytes[1] = (char)(0x80 | ((code >> 12) & 0x3F)); bytes[2] = (char)(0x80 | ((code >> 6) & 0x3F)); bytes[3] = (char)(0x80 | (code & 0x3F)); k = 4; }
    for (size_t i = 0; i < k && *n + 1 < cap; i++) out[(*n)++] = bytes[i];
}

static int hex4(const char *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

int fl_json_string(const char *value, char *out, size_t cap) {
    const char *p = fl_json_ws(value);
    if (p == NULL || *p != '"' || cap == 0) return 0;
    size_t n = 0;
    for (p++; *p != '"'; p++) {
        if (*p == '\0') return 0;
        if (*p != '\\') {
            if (n + 1 < cap) out[n++] = *p;
            continue;
        }
        char c = *++p;
        unsigned code;
        switch (c) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u':
                if (!hex4(p + 1, &code)) return 0;
                p += 4;
                if (code >= 0xD800 && code < 0xDC00 && p[1] == '\\' && p[2] == 'u') {
                    unsigned low;
                    if (hex4(p + 3, &low) && low >= 0xDC00 && low < 0xE000) {
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                        p += 6;
                    }
                }
                put_utf8(out, &n, cap, code);
                continue;
            case '\0': return 0;
            default: break; /* \" \\ \/ stand for themselves */
        }
        if (n + 1 < cap) out[n++] = c;
    }
    out[n] = '\0';
    return 1;
}

const char *fl_json_next(const char **cursor) {
    const char *p = fl_json_ws(*cursor);
    if (p == NULL) return NULL;
    if (*p == '[') {
        p = fl_json_ws(p + 1);
        if (*p == ']') { *cursor = NULL; return NULL; }
    } else if (*p == ',') {
        p = fl_json_ws(p + 1);
    } else {
        *cursor = NULL; /* ']' or garbage: the end */
        return NULL;
    }
    *cursor = fl_json_skip(p);
    return *cursor ? p : NULL;
}

/* -- writing JSON ------------------------------------------------------------------ */

void fl_buf_append(fl_buf *buf, const char *text, size_t len) {
    if (buf->failed) return;
    if (buf->len + len + 1 > buf->cap) {
        size_t cap = buf->cap ? buf->cap : 256;
        while (cap < buf->len + len + 1) cap *= 2;
        char *data = realloc(buf->data, cap);
        if (data == NULL) { buf->failed = 1; return; }
        buf->data = data;
        buf->cap = cap;
    }
    memcpy(buf->data + buf->len, text, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
}

void fl_buf_printf(fl_buf *buf, const char *format, ...) {
    char small[256];
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(small, sizeof small, format, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) { fl_buf_append(buf, small, (size_t)n); return; }
    char *big = malloc((size_t)n + 1);
    if (big == NULL) { buf->failed = 1; return; }
    va_start(ap, format);
    vsnprintf(big, (size_t)n + 1, format, ap);
    va_end(ap);
    fl_buf_append(buf, big, (size_t)n);
    free(big);
}

void fl_buf_string(fl_buf *buf, const char *text) {
    fl_buf_append(buf, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p};
            fl_buf_append(buf, esc, 2);
        } else if (*p < 0x20) {
            fl_buf_printf(buf, "\\u%04x", *p);
        } else {
            fl_buf_append(buf, (const char *)p, 1);
        }
    }
    fl_buf_append(buf, "\"", 1);
}

void fl_buf_number(fl_buf *buf, double value) {
    if (value != value || value - value != 0) { fl_buf_append(buf, "null", 4); return; }
    if (value == (double)(long long)value && value < 9e15 && value > -9e15)
        fl_buf_printf(buf, "%lld", (long long)value);
    else
        fl_buf_printf(buf, "%.17g", value);
}

void fl_buf_free(fl_buf *buf) {
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
}
