module k0s-platform/e2e/ssh/k0s-test-double

go 1.24
