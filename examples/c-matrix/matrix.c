/*
 * c-matrix: multiplies two matrices.
 *
 *   {"a": [[1, 2], [3, 4]], "b": [[5, 6], [7, 8]]}  ->  {"product": [[19, 22], [43, 50]]}
 *   {"n": 200}  ->  {"n": 200, "trace": ..., "sum": ...}
 *
 * The second form multiplies two n x n matrices filled by a fixed rule, for
 * a workload of n^3 multiply-adds whose answer is known in advance.
 */
#include <stdlib.h>

#include "fless.h"

typedef struct {
    int rows, cols;
    double *cells;
} matrix;

static double *at(matrix *m, int i, int j) { return &m->cells[(size_t)i * (size_t)m->cols + (size_t)j]; }

static int alloc_matrix(matrix *m, int rows, int cols) {
    m->rows = rows;
    m->cols = cols;
    m->cells = calloc((size_t)rows * (size_t)cols, sizeof(double));
    return m->cells != NULL;
}

/* Reads a JSON array of equally long arrays of numbers. Returns 0 with the error set. */
static int read_matrix(const char *value, const char *name, matrix *m) {
    if (value == NULL) return !fl_errorf("missing %s: give a and b, or n", name);
    /* First pass: the shape. */
    int rows = 0, cols = -1;
    const char *cursor = value, *row;
    while ((row = fl_json_next(&cursor)) != NULL) {
        int n = 0;
        const char *inner = row;
        while (fl_json_next(&inner) != NULL) n++;
        if (fl_json_ws(row)[0] != '[') return !fl_errorf("%s must be an array of arrays", name);
        if (cols >= 0 && n != cols) return !fl_errorf("the rows of %s differ in length", name);
        cols = n;
        rows++;
    }
    if (rows == 0 || cols <= 0) return !fl_errorf("%s must be a non-empty array of arrays", name);
    if (!alloc_matrix(m, rows, cols)) return !fl_error("out of memory");
    cursor = value;
    for (int i = 0; (row = fl_json_next(&cursor)) != NULL; i++) {
        const char *inner = row, *cell;
        for (int j = 0; (cell = fl_json_next(&inner)) != NULL; j++) {
            if (!fl_json_number(cell, at(m, i, j)))
                return !fl_errorf("%s[%d][%d] is not a number", name, i, j);
        }
    }
    return 1;
}

static int multiply(matrix *a, matrix *b, matrix *c) {
    if (!alloc_matrix(c, a->rows, b->cols)) return 0;
    for (int i = 0; i < a->rows; i++)
        for (int k = 0; k < a->cols; k++) {
            double aik = *at(a, i, k);
            for (int j = 0; j < b->cols; j++) *at(c, i, j) += aik * *at(b, k, j);
        }
    return 1;
}

static int generated(int n) {
    if (n < 1 || n > 1000) return fl_error("n must be between 1 and 1000");
    matrix a, b, c;
    if (!alloc_matrix(&a, n, n) || !alloc_matrix(&b, n, n)) return fl_error("out of memory");
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            *at(&a, i, j) = (i + j) % 7;
            *at(&b, i, j) = (i * j) % 5;
        }
    if (!multiply(&a, &b, &c)) return fl_error("out of memory");
    double trace = 0, sum = 0;
    for (int i = 0; i < n; i++) {
        trace += *at(&c, i, i);
        for (int j = 0; j < n; j++) sum += *at(&c, i, j);
    }
    fl_buf out = {0};
    fl_buf_printf(&out, "{\"n\":%d,\"trace\":", n);
    fl_buf_number(&out, trace);
    fl_buf_append(&out, ",\"sum\":", 7);
    fl_buf_number(&out, sum);
    fl_buf_append(&out, "}", 1);
    int status = out.failed ? fl_error("out of memory") : fl_respond_n(out.data, out.len);
    fl_buf_free(&out);
    return status;
}

int fl_main(const char *args, size_t len) {
    (void)len;
    double n;
    const char *n_value = fl_json_get(args, "n");
    if (n_value != NULL) {
        if (!fl_json_number(n_value, &n)) return fl_error("n must be a number");
        return generated((int)n);
    }
    matrix a, b, c;
    if (!read_matrix(fl_json_get(args, "a"), "a", &a)) return 1;
    if (!read_matrix(fl_json_get(args, "b"), "b", &b)) return 1;
    if (a.cols != b.rows)
        return fl_errorf("cannot multiply a %dx%d matrix by a %dx%d matrix", a.rows, a.cols,
                         b.rows, b.cols);
    if (!multiply(&a, &b, &c)) return fl_error("out of memory");

    fl_buf out = {0};
    fl_buf_append(&out, "{\"product\":[", 12);
    for (int i = 0; i < c.rows; i++) {
        fl_buf_append(&out, i ? ",[" : "[", i ? 2 : 1);
        for (int j = 0; j < c.cols; j++) {
            if (j) fl_buf_append(&out, ",", 1);
            fl_buf_number(&out, *at(&c, i, j));
        }
        fl_buf_append(&out, "]", 1);
    }
    fl_buf_append(&out, "]}", 2);
    int status = out.failed ? fl_error("out of memory") : fl_respond_n(out.data, out.len);
    fl_buf_free(&out);
    return status;
}
