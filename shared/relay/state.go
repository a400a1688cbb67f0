package relay

import (
	"context"

	"github.com/promrelay/promrelay/shared/metrics"
	"github.com/promrelay/promrelay/shared/otlp"
	"github.com/promrelay/promrelay/shared/push"
	"github.com/promrelay/promrelay/shared/upstream"
	"github.com/promrelay/promrelay/shared/wire"
)

// requestState is the reusable memory of one request.
type requestState struct {
	body    []byte
	decoded []byte
	out     []byte
	proto   []byte // an OTLP/JSON body's protobuf form
	set     []wire.Label
	wr      wire.WriteRequest
	exp     wire.Exposition
	conv    push.Converter
	rw      wire.Rewriter
	otlp    otlp.Translator
	written bool            // the upstream took this request's rewritten series
	res     upstream.Result // what the last upstream write did
}

// maxPooledBytes is the largest buffer, and maxPooledEntries the most
// entries of a decoded exposition or write request (Retained), kept for
// reuse: what the pool keeps is memory the
// budget does not see, so an outsized request's memory goes to the garbage
// collector.
const (
	maxPooledBytes   = 1 << 20
	maxPooledEntries = 50000
)

func (h *Handler) getState() *requestState {
	st, _ := h.state.Get().(*requestState)
	if st == nil {
		st = &requestState{}
	}
	return st
}

func (h *Handler) putState(st *requestState) {
	if cap(st.body) > maxPooledBytes || cap(st.decoded) > maxPooledBytes || cap(st.out) > maxPooledBytes || cap(st.proto) > maxPooledBytes ||
		st.exp.Retained() > maxPooledEntries || st.wr.Retained() > maxPooledEntries {
		return
	}
	st.wr.Reset()
	st.exp.Reset()
	h.state.Put(st)
}

func addBytesIn(ctx context.Context, n int) {
	if st := statsFrom(ctx); st != nil {
		st.mu.Lock()
		st.bytesIn += n
		st.mu.Unlock()
	}
}

// counts are series values by kind: float samples, histogram samples,
// exemplars (the kind label of promrelay_received_total and friends).
type counts [3]int

const (
	kindSample = iota
	kindHistogram
	kindExemplar
)

// kindNames are the kind label values of counts' indexes.
var kindNames = [...]string{kindSample: metrics.KindSample, kindHistogram: metrics.KindHistogram, kindExemplar: metrics.KindExemplar}

// setIn sets the request's decoded series values to c: a push's, once
// converted, are the values of the series it becomes (a histogram without
// a +Inf bucket gets one), which the relayed count also counts.
func setIn(ctx context.Context, c counts) {
	if st := statsFrom(ctx); st != nil {
		st.mu.Lock()
		st.in = c
		st.mu.Unlock()
	}
}

// addIn adds c to the request's decoded series values.
func addIn(ctx context.Context, c counts) {
	if st := statsFrom(ctx); st != nil {
		st.mu.Lock()
		for k := range c {
			st.in[k] += c[k]
		}
		st.mu.Unlock()
	}
}
