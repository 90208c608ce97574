/* POSTs args.body to args.url with an X-Test header; answers {"status", "body"}. */
#include <string.h>

#include "fless.h"

static char response[4096];

int fl_main(const char *args, size_t len) {
    (void)len;
    char url[256], body[256];
    if (!fl_json_string(fl_json_get(args, "url"), url, sizeof url)) return fl_error("no url");
    if (!fl_json_string(fl_json_get(args, "body"), body, sizeof body)) return fl_error("no body");
    uint32_t size = sizeof response - 1;
    uint16_t status = 0;
    static const char headers[] = "X-Test:yes";
    __http_request(response, &size, &status, FL_POST, url, (int32_t)strlen(url), headers,
                   (int32_t)sizeof headers - 1, body, (int32_t)strlen(body));
    response[size] = '\0';
    fl_buf out = {0};
    fl_buf_printf(&out, "{\"status\":%u,\"body\":", (unsigned)status);
    fl_buf_string(&out, response);
    fl_buf_append(&out, "}", 1);
    int result = fl_respond_n(out.data, out.len);
    fl_buf_free(&out);
    return result;
}
