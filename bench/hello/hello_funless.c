/* The benchmark hello in the FunLess ABI: __invoke(len), args via the host. */
#include <stdint.h>
#include <stdlib.h>

#include "fl_imps.h"
#include "greet.h"

FL_EXPORT(__invoke) int32_t invoke(int32_t len) {
    char *args = malloc((size_t)len + 1);
    if (args == NULL) {
        static const char oom[] = "out of memory";
        __insert_error(oom, sizeof oom - 1);
        return 1;
    }
    __get_input_data(args);
    args[len] = '\0';
    char response[320];
    int n = greet(args, response, sizeof response);
    free(args);
    if (n < 0) {
        static const char bad[] = "args must be a JSON object";
        __insert_error(bad, sizeof bad - 1);
        return 1;
    }
    __insert_response(response, n);
    return 0;
}
