// Package bench compares promrelay's codec with its peers on identical,
// generated corpora: prometheus/prometheus prompb (gogo-protobuf) and
// textparse, prometheus/common expfmt, VictoriaMetrics lib/prompb,
// lib/prompbmarshal and lib/protoparser/prometheus, golang/snappy and
// klauspost/compress s2. It is a module of its own so that the peers never
// enter promrelay's dependencies or binaries. Run it with `make bench`.
package bench
