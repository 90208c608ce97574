// go_hello: a fless function in Go. {"name": "Ada"} -> {"message": "Hello, Ada!"}
package main

import (
	"errors"

	"fless.dev/fless"
)

func init() { fless.Handle(handle) }

func handle(args map[string]any) (any, error) {
	name := "world"
	if value, ok := args["name"]; ok {
		text, ok := value.(string)
		if !ok {
			return nil, errors.New("name must be a string")
		}
		name = text
	}
	return map[string]any{"message": "Hello, " + name + "!"}, nil
}

// main is not called: fless runs the function through __invoke.
func main() {}
