package relay

// For the tests in package relay_test.

// PushCost is what a push of decoded bytes holding samples samples is
// charged beyond its body.
func PushCost(decoded, samples int) int64 {
	return pushCost(decoded, 100000) + int64(samples)*pushBytesPerSample
}

// RemoteWriteCost is what a remote write of decoded bytes is charged
// beyond its body.
func RemoteWriteCost(decoded, _ int) int64 { return int64(decoded) * remoteWriteBytesPerByte }
