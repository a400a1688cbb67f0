module github.com/promrelay/promrelay

go 1.26.0

require github.com/golang/snappy v1.0.0
