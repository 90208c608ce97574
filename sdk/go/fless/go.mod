module fless.dev/fless

go 1.24
