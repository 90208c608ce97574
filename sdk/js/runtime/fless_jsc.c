/*
 * fless_jsc: compiles one JavaScript file to QuickJS bytecode, written out
 * as a C source defining NAME (the bytes) and NAME_len, to be linked into a
 * function's .wasm next to the runtime. A native build of the same QuickJS
 * sources as the runtime: the bytecode format has no word size or byte
 * order in it, only the engine's version, which both share.
 *
 *   fless_jsc --module|--script INPUT.js NAME OUTPUT.c
 *
 * A syntax error is printed as the compiler's message and exits 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quickjs.h"

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)size + 1);
    if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[size] = '\0';
        *len = (size_t)size;
    }
    return buf;
}

static void print_exception(JSContext *ctx) {
    JSValue exc = JS_GetException(ctx);
    const char *text = JS_ToCString(ctx, exc);
    JSValue stack = JS_IsError(exc) ? JS_GetPropertyStr(ctx, exc, "stack") : JS_UNDEFINED;
    const char *where = JS_IsString(stack) ? JS_ToCString(ctx, stack) : NULL;
    fprintf(stderr, "%s\n%s", text ? text : "error", where ? where : "");
}

int main(int argc, char **argv) {
    if (argc != 5 || (strcmp(argv[1], "--module") && strcmp(argv[1], "--script"))) {
        fprintf(stderr, "usage: fless_jsc --module|--script INPUT.js NAME OUTPUT.c\n");
        return 2;
    }
    int module = strcmp(argv[1], "--module") == 0;
    const char *input = argv[2], *name = argv[3], *output = argv[4];
    size_t len;
    char *source = read_file(input, &len);
    if (!source) {
        perror(input);
        return 2;
    }
    JSRuntime *rt = JS_NewRuntime();
    JSContext *ctx = JS_NewContext(rt);
    int flags = JS_EVAL_FLAG_COMPILE_ONLY | (module ? JS_EVAL_TYPE_MODULE : JS_EVAL_TYPE_GLOBAL);
    JSValue code = JS_Eval(ctx, source, len, input, flags);
    if (JS_IsException(code)) {
        print_exception(ctx);
        return 1;
    }
    size_t size;
    uint8_t *bc = JS_WriteObject(ctx, &size, code, JS_WRITE_OBJ_BYTECODE | JS_WRITE_OBJ_STRIP_SOURCE);
    if (!bc) {
        print_exception(ctx);
        return 1;
    }
    FILE *out = fopen(output, "w");
    if (!out) {
        perror(output);
        return 2;
    }
    fprintf(out, "#include <stdint.h>\nconst uint32_t %s_len = %zu;\n", name, size);
    fprintf(out, "__attribute__((aligned(8))) const uint8_t %s[%zu] = {", name, size);
    for (size_t i = 0; i < size; i++)
        fprintf(out, "%s%u,", i % 24 ? "" : "\n", bc[i]);
    fprintf(out, "\n};\n");
    return fclose(out) == 0 ? 0 : 2;
}
