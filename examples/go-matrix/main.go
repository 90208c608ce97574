// go-matrix: multiplies two matrices, as examples/c-matrix does in C.
//
//	{"a": [[1, 2], [3, 4]], "b": [[5, 6], [7, 8]]}  ->  {"product": [[19, 22], [43, 50]]}
//	{"n": 200}  ->  {"n": 200, "trace": ..., "sum": ...}
//
// The second form multiplies two n x n matrices filled by a fixed rule: n^3
// multiply-adds whose answer is known in advance.
package main

import (
	"errors"
	"fmt"

	"fless.dev/fless"
)

func init() { fless.Handle(handle) }

func main() {}

type matrix [][]float64

func readMatrix(args map[string]any, name string) (matrix, error) {
	value, ok := args[name]
	if !ok {
		return nil, fmt.Errorf("missing %s: give a and b, or n", name)
	}
	rows, ok := value.([]any)
	if !ok || len(rows) == 0 {
		return nil, fmt.Errorf("%s must be a non-empty array of arrays", name)
	}
	m := make(matrix, len(rows))
	for i, row := range rows {
		cells, ok := row.([]any)
		if !ok {
			return nil, fmt.Errorf("%s must be an array of arrays", name)
		}
		if len(cells) == 0 || (i > 0 && len(cells) != len(m[0])) {
			return nil, fmt.Errorf("the rows of %s differ in length", name)
		}
		m[i] = make([]float64, len(cells))
		for j, cell := range cells {
			number, ok := cell.(float64)
			if !ok {
				return nil, fmt.Errorf("%s[%d][%d] is not a number", name, i, j)
			}
			m[i][j] = number
		}
	}
	return m, nil
}

func multiply(a, b matrix) matrix {
	c := make(matrix, len(a))
	for i := range a {
		c[i] = make([]float64, len(b[0]))
		for k, aik := range a[i] {
			for j, bkj := range b[k] {
				c[i][j] += aik * bkj
			}
		}
	}
	return c
}

func generated(n int) (any, error) {
	if n < 1 || n > 1000 {
		return nil, errors.New("n must be between 1 and 1000")
	}
	a, b := make(matrix, n), make(matrix, n)
	for i := 0; i < n; i++ {
		a[i], b[i] = make([]float64, n), make([]float64, n)
		for j := 0; j < n; j++ {
			a[i][j] = float64((i + j) % 7)
			b[i][j] = float64((i * j) % 5)
		}
	}
	c := multiply(a, b)
	trace, sum := 0.0, 0.0
	for i := range c {
		trace += c[i][i]
		for _, v := range c[i] {
			sum += v
		}
	}
	return map[string]any{"n": n, "trace": trace, "sum": sum}, nil
}

func handle(args map[string]any) (any, error) {
	if value, ok := args["n"]; ok {
		n, ok := value.(float64)
		if !ok {
			return nil, errors.New("n must be a number")
		}
		return generated(int(n))
	}
	a, err := readMatrix(args, "a")
	if err != nil {
		return nil, err
	}
	b, err := readMatrix(args, "b")
	if err != nil {
		return nil, err
	}
	if len(a[0]) != len(b) {
		return nil, fmt.Errorf("cannot multiply a %dx%d matrix by a %dx%d matrix",
			len(a), len(a[0]), len(b), len(b[0]))
	}
	return map[string]any{"product": multiply(a, b)}, nil
}
