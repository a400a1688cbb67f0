package wire

import "fmt"

// Limits bound the work of decoding one request. Every decoder (ParseText,
// ParseDelimited, WriteRequest.Unmarshal, Rewriter.Rewrite) checks them while
// it decodes and stops at the first value over a limit with a *LimitError,
// before doing the work that value would cost; ValidateSeries checks the
// label limits of one series. A zero field means no limit.
type Limits struct {
	// MaxSamples bounds the samples of one request: each float sample,
	// each histogram sample, each text sample line, each summary or
	// histogram metric's _sum and _count, each series without samples and
	// each metric family (text or protobuf) counts one.
	MaxSamples int
	// MaxLabels bounds the labels of one series, __name__ (and le or
	// quantile) included.
	MaxLabels int
	// MaxLabelBytes bounds the bytes of one label's name plus its value.
	MaxLabelBytes int
}

// LimitKind names the limit of Limits that a request crossed.
type LimitKind int

// LimitKind values, one per field of Limits.
const (
	LimitSamples    LimitKind = iota + 1 // Limits.MaxSamples
	LimitLabels                          // Limits.MaxLabels
	LimitLabelBytes                      // Limits.MaxLabelBytes
)

// String returns the limit's name as error messages use it.
func (k LimitKind) String() string {
	switch k {
	case LimitSamples:
		return "samples per request"
	case LimitLabels:
		return "labels per series"
	case LimitLabelBytes:
		return "bytes per label"
	}
	return fmt.Sprintf("LimitKind(%d)", int(k))
}

// LimitError is a request that crossed one of its Limits while it was
// decoded. The decoder stopped there; nothing after that point was decoded.
// A receiver answers it with 413 Payload Too Large.
type LimitError struct {
	Kind  LimitKind
	Limit int
	// Where names what crossed the limit, as far as it was decoded: a
	// metric name or a label name; empty for LimitSamples.
	Where string
}

func (e *LimitError) Error() string {
	if e.Where == "" {
		return fmt.Sprintf("more than %d %s", e.Limit, e.Kind)
	}
	return fmt.Sprintf("%s: more than %d %s", e.Where, e.Limit, e.Kind)
}

// budget counts samples against Limits.MaxSamples.
type budget struct {
	n, max int
}

func newBudget(lim Limits) budget { return budget{max: lim.MaxSamples} }

// take charges k samples and returns a *LimitError once the total is over
// the limit.
func (b *budget) take(k int) error {
	b.n += k
	if b.max > 0 && b.n > b.max {
		return &LimitError{Kind: LimitSamples, Limit: b.max}
	}
	return nil
}

// labelOver reports which label limit, if any (0 when none), a series'
// n-th label (counted from 1) of size bytes (name plus value) crosses.
func (lim *Limits) labelOver(n, size int) LimitKind {
	if lim.MaxLabels > 0 && n > lim.MaxLabels {
		return LimitLabels
	}
	if lim.MaxLabelBytes > 0 && size > lim.MaxLabelBytes {
		return LimitLabelBytes
	}
	return 0
}

// labelError returns the *LimitError for kind (from labelOver); where names
// the metric or label that crossed it.
func (lim *Limits) labelError(kind LimitKind, where string) error {
	limit := lim.MaxLabels
	if kind == LimitLabelBytes {
		limit = lim.MaxLabelBytes
	}
	return &LimitError{Kind: kind, Limit: limit, Where: where}
}
