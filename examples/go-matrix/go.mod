module go_matrix

go 1.24

require fless.dev/fless v0.0.0
