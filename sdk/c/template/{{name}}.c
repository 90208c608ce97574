/* {{name}}: a fless function in C. {"name": "Ada"} -> {"message": "Hello, Ada!"} */
#include <stdio.h>

#include "fless.h"

int fl_main(const char *args, size_t len) {
    (void)len;
    char name[128] = "world";
    const char *value = fl_json_get(args, "name");
    if (value != NULL && !fl_json_string(value, name, sizeof name))
        return fl_error("name must be a string");

    fl_buf out = {0};
    fl_buf_append(&out, "{\"message\":", 11);
    char greeting[160];
    snprintf(greeting, sizeof greeting, "Hello, %s!", name);
    fl_buf_string(&out, greeting);
    fl_buf_append(&out, "}", 1);
    int status = out.failed ? fl_error("out of memory") : fl_respond_n(out.data, out.len);
    fl_buf_free(&out);
    return status;
}
