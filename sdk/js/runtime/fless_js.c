/*
 * The fless JavaScript runtime: QuickJS behind the FunLess ABI.
 *
 * Each invocation runs in a fresh Wasm instance, so __invoke builds one
 * QuickJS runtime, runs the prelude (console, fetch) and the user's module,
 * both precompiled to QuickJS bytecode at build time, calls the module's
 * exported main(args) and reports its result. Nothing is freed at the end:
 * the host drops the whole instance, which is cheaper than tearing down
 * the JS heap object by object.
 *
 * The bytecode comes from fless_jsc (same QuickJS sources) as two arrays
 * linked in per function: fless_prelude_bc and fless_main_bc.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "quickjs.h"

#define FL_IMPORT(name) __attribute__((import_module("fl_imps"), import_name(#name)))
#define FL_EXPORT(name) __attribute__((export_name(#name)))

FL_IMPORT(__get_input_data) void __get_input_data(void *ptr);
FL_IMPORT(__insert_response) void __insert_response(const void *ptr, int32_t len);
FL_IMPORT(__insert_error) void __insert_error(const void *ptr, int32_t len);
FL_IMPORT(__console_log) void __console_log(const void *ptr, int32_t len);
FL_IMPORT(__http_request)
void __http_request(void *resp, uint32_t *resp_len, uint16_t *status, int32_t method,
                    const char *uri, int32_t uri_len, const char *headers, int32_t headers_len,
                    const void *body, int32_t body_len);

extern const uint8_t fless_prelude_bc[];
extern const uint32_t fless_prelude_bc_len;
extern const uint8_t fless_main_bc[];
extern const uint32_t fless_main_bc_len;

/* The host's own cap on one response body (Limits.http_max_response_bytes). */
#define HTTP_RESPONSE_CAPACITY (4u * 1024u * 1024u)
/* QuickJS checks its shadow stack (in linear memory) against this, which
   must run out before Wasmtime's own stack for wasm frames (512 KiB) does,
   so deep recursion is a RangeError, not a trap. */
#define JS_STACK_LIMIT (160u * 1024u)

static int32_t fail(const char *message, size_t len) {
    __insert_error(message, (int32_t)len);
    return 1;
}

static int32_t fail_str(const char *message) { return fail(message, strlen(message)); }

/* Reports the pending exception as the function's error; its stack goes to the log. */
static int32_t fail_exception(JSContext *ctx) {
    JSValue exc = JS_GetException(ctx);
    if (JS_IsError(exc)) {
        JSValue stack = JS_GetPropertyStr(ctx, exc, "stack");
        if (JS_IsString(stack)) {
            size_t len;
            const char *text = JS_ToCStringLen(ctx, &len, stack);
            if (text) {
                __console_log(text, (int32_t)len);
                JS_FreeCString(ctx, text);
            }
        }
        JS_FreeValue(ctx, stack);
    }
    size_t len;
    const char *text = JS_ToCStringLen(ctx, &len, exc);
    if (!text)
        return fail_str("function threw a value that cannot be converted to a string");
    return fail(text, len);
}

/* __fless_log(line): one console line. */
static JSValue js_log(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv) {
    size_t len;
    const char *text = JS_ToCStringLen(ctx, &len, argv[0]);
    if (!text)
        return JS_EXCEPTION;
    __console_log(text, (int32_t)len);
    JS_FreeCString(ctx, text);
    return JS_UNDEFINED;
}

/* __fless_http(method, url, headers, body) -> [status, body]; status 0 when it failed. */
static JSValue js_http(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv) {
    int32_t method;
    if (JS_ToInt32(ctx, &method, argv[0]))
        return JS_EXCEPTION;
    size_t url_len, headers_len, body_len;
    const char *url = JS_ToCStringLen(ctx, &url_len, argv[1]);
    const char *headers = JS_ToCStringLen(ctx, &headers_len, argv[2]);
    const char *body = JS_ToCStringLen(ctx, &body_len, argv[3]);
    uint8_t *resp = malloc(HTTP_RESPONSE_CAPACITY);
    JSValue result = JS_EXCEPTION;
    if (url && headers && body && resp) {
        uint32_t resp_len = HTTP_RESPONSE_CAPACITY;
        uint16_t status = 0;
        __http_request(resp, &resp_len, &status, method, url, (int32_t)url_len, headers,
                       (int32_t)headers_len, body, (int32_t)body_len);
        result = JS_NewArray(ctx);
        JS_SetPropertyUint32(ctx, result, 0, JS_NewInt32(ctx, status));
        JS_SetPropertyUint32(ctx, result, 1, JS_NewStringLen(ctx, (const char *)resp, resp_len));
    } else if (!resp) {
        result = JS_ThrowOutOfMemory(ctx);
    }
    free(resp);
    JS_FreeCString(ctx, url);
    JS_FreeCString(ctx, headers);
    JS_FreeCString(ctx, body);
    return result;
}

/* Runs queued promise jobs until none is left; -1 if one threw. */
static int drain_jobs(JSRuntime *rt) {
    JSContext *job_ctx;
    int status;
    while ((status = JS_ExecutePendingJob(rt, &job_ctx)) > 0) {
    }
    return status;
}

/* Settles a value that may be a promise: its result, or an exception. */
static JSValue settle(JSContext *ctx, JSValue value, const char *what) {
    if (drain_jobs(JS_GetRuntime(ctx)) < 0) {
        JS_FreeValue(ctx, value);
        return JS_EXCEPTION;
    }
    if (!JS_IsPromise(value))
        return value;
    JSPromiseStateEnum state = JS_PromiseState(ctx, value);
    JSValue result = JS_PromiseResult(ctx, value);
    JS_FreeValue(ctx, value);
    if (state == JS_PROMISE_FULFILLED)
        return result;
    if (state == JS_PROMISE_REJECTED)
        return JS_Throw(ctx, result);
    JS_FreeValue(ctx, result);
    return JS_ThrowInternalError(ctx, "%s never settled (it awaits something no one resolves)",
                                 what);
}

static JSValue run_bytecode(JSContext *ctx, const uint8_t *bc, uint32_t len) {
    JSValue code = JS_ReadObject(ctx, bc, len, JS_READ_OBJ_BYTECODE);
    if (JS_IsException(code))
        return code;
    if (JS_IsModule(code) && JS_ResolveModule(ctx, code) < 0) {
        JS_FreeValue(ctx, code);
        return JS_EXCEPTION;
    }
    return JS_EvalFunction(ctx, code);
}

FL_EXPORT(__invoke) int32_t __invoke(int32_t input_len) {
    char *input = malloc((size_t)input_len + 1);
    if (!input)
        return fail_str("out of memory reading the arguments");
    __get_input_data(input);
    input[input_len] = '\0';

    JSRuntime *rt = JS_NewRuntime();
    if (!rt)
        return fail_str("out of memory starting the JavaScript runtime");
    JS_SetMaxStackSize(rt, JS_STACK_LIMIT);
    JSContext *ctx = JS_NewContext(rt);
    if (!ctx)
        return fail_str("out of memory starting the JavaScript context");

    JSValue global = JS_GetGlobalObject(ctx);
    JS_SetPropertyStr(ctx, global, "__fless_log", JS_NewCFunction(ctx, js_log, "__fless_log", 1));
    JS_SetPropertyStr(ctx, global, "__fless_http",
                      JS_NewCFunction(ctx, js_http, "__fless_http", 4));
    JS_FreeValue(ctx, global);

    JSValue done = run_bytecode(ctx, fless_prelude_bc, fless_prelude_bc_len);
    if (JS_IsException(done))
        return fail_exception(ctx);
    JS_FreeValue(ctx, done);

    JSValue module = JS_ReadObject(ctx, fless_main_bc, fless_main_bc_len, JS_READ_OBJ_BYTECODE);
    if (JS_IsException(module))
        return fail_exception(ctx);
    JSModuleDef *def = JS_VALUE_GET_PTR(module);
    if (JS_ResolveModule(ctx, module) < 0)
        return fail_exception(ctx);
    /* Evaluating a module gives a promise (top-level await is allowed). */
    done = settle(ctx, JS_EvalFunction(ctx, module), "the module's top-level code");
    if (JS_IsException(done))
        return fail_exception(ctx);
    JS_FreeValue(ctx, done);

    JSValue ns = JS_GetModuleNamespace(ctx, def);
    JSValue main_fn = JS_GetPropertyStr(ctx, ns, "main");
    if (!JS_IsFunction(ctx, main_fn))
        return fail_str("the module does not export a function main(args)");
    JSValue args = JS_ParseJSON(ctx, input, (size_t)input_len, "<args>");
    if (JS_IsException(args))
        return fail_exception(ctx);
    JSValue result =
        settle(ctx, JS_Call(ctx, main_fn, JS_UNDEFINED, 1, (JSValueConst *)&args), "main(args)");
    if (JS_IsException(result))
        return fail_exception(ctx);

    JSValue json = JS_JSONStringify(ctx, result, JS_UNDEFINED, JS_UNDEFINED);
    if (JS_IsException(json))
        return fail_exception(ctx);
    if (JS_IsUndefined(json)) {
        /* main returned undefined (or a function): JSON has no such value. */
        __insert_response("null", 4);
        return 0;
    }
    size_t len;
    const char *text = JS_ToCStringLen(ctx, &len, json);
    if (!text)
        return fail_exception(ctx);
    __insert_response(text, (int32_t)len);
    return 0;
}
