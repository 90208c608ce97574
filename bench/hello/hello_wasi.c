/* The benchmark hello as a WASI command: JSON args on stdin, JSON on stdout. */
#include <stdio.h>

#include "greet.h"

static char input[65536];

int main(void) {
    size_t len = fread(input, 1, sizeof input - 1, stdin);
    input[len] = '\0';
    char response[320];
    int n = greet(input, response, sizeof response);
    if (n < 0) {
        fputs("args must be a JSON object", stderr);
        return 1;
    }
    fwrite(response, 1, (size_t)n, stdout);
    return 0;
}
