package wire

import "errors"

// V2Counts is a stub until the codec lands.
type V2Counts struct{ Samples, Histograms, Exemplars int }

// UnmarshalV2 is a stub until the codec lands.
func (wr *WriteRequest) UnmarshalV2(raw []byte, lim Limits) (V2Counts, error) {
	return V2Counts{}, errors.New("not yet")
}
