/* A FunLess-ABI function: {"name":"x"} -> {"message":"Hello, x!"}. */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "fl_imps.h"

/*
 * Copies the string value of "name" in a JSON object to out, escapes and
 * all, so that it can go back into JSON as is. A tiny extraction, not a
 * JSON parser: enough for a greeting.
 */
static int find_name(const char *json, char *out, size_t cap) {
    const char *p = strstr(json, "\"name\"");
    if (p == NULL) return 0;
    p += 6;
    while (*p == ' ' || *p == ':' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    if (*p++ != '"') return 0;
    size_t n = 0;
    while (*p != '\0' && *p != '"' && n + 2 < cap) {
        if (*p == '\\' && p[1] != '\0') out[n++] = *p++;
        out[n++] = *p++;
    }
    if (*p != '"') return 0;
    out[n] = '\0';
    return 1;
}

FL_EXPORT(__invoke) int32_t invoke(int32_t len) {
    char *args = malloc((size_t)len + 1);
    if (args == NULL) {
        static const char oom[] = "out of memory";
        __insert_error(oom, sizeof oom - 1);
        return 1;
    }
    __get_input_data(args);
    args[len] = '\0';

    char name[256];
    if (!find_name(args, name, sizeof name)) strcpy(name, "world");
    free(args);

    char line[320];
    int n = snprintf(line, sizeof line, "greeting %s", name);
    __console_log(line, n);

    char response[320];
    n = snprintf(response, sizeof response, "{\"message\":\"Hello, %s!\"}", name);
    __insert_response(response, n);
    return 0;
}
