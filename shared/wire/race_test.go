//go:build race

package wire_test

// raceEnabled: the race detector makes sync.Pool drop what it keeps, so
// allocation counts of pooled code are not meaningful.
const raceEnabled = true
