/*
 * The FunLess ABI for C functions running on fless.
 *
 * The host calls __invoke(len) with the byte length of the JSON arguments;
 * the function reserves that many bytes, has the host copy them there with
 * __get_input_data, and returns 0 after __insert_response(json) or 1 after
 * __insert_error(message). Build with:
 *
 *   python -m ziglang cc -target wasm32-wasi -O2 -mexec-model=reactor ...
 */
#ifndef FL_IMPS_H
#define FL_IMPS_H

#include <stdint.h>

#define FL_IMPORT(name) __attribute__((import_module("fl_imps"), import_name(#name)))
#define FL_EXPORT(name) __attribute__((export_name(#name)))

/* Copies the JSON arguments (as many bytes as __invoke was told) to ptr. */
FL_IMPORT(__get_input_data) void __get_input_data(void *ptr);
/* The function's JSON result. */
FL_IMPORT(__insert_response) void __insert_response(const void *ptr, int32_t len);
/* The function's error message; __invoke then returns 1. */
FL_IMPORT(__insert_error) void __insert_error(const void *ptr, int32_t len);
/* One log line, kept by the host while the function's log budget lasts. */
FL_IMPORT(__console_log) void __console_log(const void *ptr, int32_t len);

enum fl_http_method { FL_GET = 0, FL_POST = 1, FL_PUT = 2, FL_DELETE = 3 };

/*
 * One outbound HTTP request, to a host on the allow-list (any other host
 * ends the function). Headers are "Key:Value" lines joined by '\n'. Store
 * the capacity of resp in *resp_len before the call; the host writes at most
 * that many body bytes at resp, the body length in *resp_len and the status
 * in *status (0 if the request failed).
 */
FL_IMPORT(__http_request)
void __http_request(void *resp, uint32_t *resp_len, uint16_t *status, int32_t method,
                    const char *uri, int32_t uri_len, const char *headers, int32_t headers_len,
                    const void *body, int32_t body_len);

#endif
