module go_fetch

go 1.24

require fless.dev/fless v0.0.0
