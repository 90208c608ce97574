// POSTs args.body to args.url with an X-Test header; answers {"status", "body"}.
package main

import "fless.dev/fless"

func init() {
	fless.Handle(func(args map[string]any) (any, error) {
		url, _ := args["url"].(string)
		body, _ := args["body"].(string)
		status, resp := fless.HTTP(fless.POST, url, map[string]string{"X-Test": "yes"}, []byte(body), 4096)
		return map[string]any{"status": status, "body": string(resp)}, nil
	})
}

func main() {}
