module go_hello

go 1.24

// fless.dev/fless is the SDK: `fless fn build` finds it in the fless installation.
require fless.dev/fless v0.0.0
