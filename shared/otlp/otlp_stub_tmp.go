// Package otlp: temporary stub of the OTLP helper's API; deleted before its merge.
package otlp

import "github.com/promrelay/promrelay/shared/wire"

type Settings struct {
	PromoteResourceAttributes []string
	PromoteScopeMetadata      bool
	DeltaIngest               bool
	MaxBytes                  int
}

type Stats struct {
	Points      int
	Rejected    int
	Message     string
	DeltaPoints int
	DeltaMetric string
}

type Translator struct{}

func (t *Translator) Translate(wr *wire.WriteRequest, raw []byte, s Settings, lim wire.Limits) (Stats, error) {
	wr.Reset()
	return Stats{}, nil
}

func AppendProtoFromJSON(dst, body []byte) ([]byte, error) { return dst, nil }

func AppendResponse(dst []byte, json bool, rejected int64, msg string) []byte { return dst }
