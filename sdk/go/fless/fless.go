// Package fless is the FunLess ABI for Go functions on fless.
//
//	package main
//
//	import "fless.dev/fless"
//
//	func init() { fless.Handle(hello) }
//
//	func hello(args map[string]any) (any, error) {
//		return map[string]any{"message": "Hello!"}, nil
//	}
//
//	func main() {}
//
// Build with GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared: the module
// is a reactor, fless runs _initialize (the Go runtime and init functions),
// then __invoke for the call.
package fless

import (
	"encoding/json"
	"fmt"
	"strings"
	"unsafe"
)

//go:wasmimport fl_imps __get_input_data
func getInputData(ptr unsafe.Pointer)

//go:wasmimport fl_imps __insert_response
func insertResponse(ptr unsafe.Pointer, length int32)

//go:wasmimport fl_imps __insert_error
func insertError(ptr unsafe.Pointer, length int32)

//go:wasmimport fl_imps __console_log
func consoleLog(ptr unsafe.Pointer, length int32)

//go:wasmimport fl_imps __http_request
func httpRequest(resp unsafe.Pointer, respLen unsafe.Pointer, status unsafe.Pointer, method int32,
	uri unsafe.Pointer, uriLen int32, headers unsafe.Pointer, headersLen int32,
	body unsafe.Pointer, bodyLen int32)

// Func is a function's body: the JSON arguments in, a value to encode as JSON
// (or an error whose message the caller gets with a 422) out.
type Func func(args map[string]any) (any, error)

var handler Func

// Handle sets the function that __invoke runs; call it from an init function.
func Handle(f Func) { handler = f }

// Log writes one log line to the host.
func Log(format string, a ...any) {
	line := []byte(fmt.Sprintf(format, a...))
	if len(line) > 0 {
		consoleLog(unsafe.Pointer(&line[0]), int32(len(line)))
	}
}

// Method numbers of __http_request.
const (
	GET    = 0
	POST   = 1
	PUT    = 2
	DELETE = 3
)

// HTTP sends one request through the host, to a host on the function's
// allow-list; it keeps at most maxBody bytes of the answer. Status 0 means
// the request failed.
func HTTP(method int32, uri string, headers map[string]string, body []byte, maxBody int) (int, []byte) {
	lines := make([]string, 0, len(headers))
	for k, v := range headers {
		lines = append(lines, k+":"+v)
	}
	hdr := []byte(strings.Join(lines, "\n"))
	resp := make([]byte, maxBody+1)
	respLen := uint32(maxBody)
	var status uint16
	// Copies with a NUL at the end: never empty (so &x[0] is valid), and the
	// caller's body is not written to.
	u := []byte(uri + "\x00")
	hdr = append(hdr, 0)
	b := make([]byte, len(body)+1)
	copy(b, body)
	body = b
	httpRequest(unsafe.Pointer(&resp[0]), unsafe.Pointer(&respLen), unsafe.Pointer(&status), method,
		unsafe.Pointer(&u[0]), int32(len(u)-1), unsafe.Pointer(&hdr[0]), int32(len(hdr)-1),
		unsafe.Pointer(&body[0]), int32(len(body)-1))
	if int(respLen) < maxBody {
		resp = resp[:respLen]
	} else {
		resp = resp[:maxBody]
	}
	return int(status), resp
}

func fail(message string) int32 {
	b := []byte(message)
	if len(b) == 0 {
		b = []byte("error")
	}
	insertError(unsafe.Pointer(&b[0]), int32(len(b)))
	return 1
}

//go:wasmexport __invoke
func invoke(length int32) int32 {
	if handler == nil {
		return fail("no function: call fless.Handle(f) in an init function")
	}
	input := make([]byte, length+1)
	getInputData(unsafe.Pointer(&input[0]))
	var args map[string]any
	if err := json.Unmarshal(input[:length], &args); err != nil {
		return fail("arguments are not a JSON object: " + err.Error())
	}
	result, err := handler(args)
	if err != nil {
		return fail(err.Error())
	}
	out, err := json.Marshal(result)
	if err != nil {
		return fail("cannot encode the result as JSON: " + err.Error())
	}
	insertResponse(unsafe.Pointer(&out[0]), int32(len(out)))
	return 0
}
