package metrics_test

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/promrelay/promrelay/shared/groupstore"
	"github.com/promrelay/promrelay/shared/metrics"
)

// racingStore is a groupstore.Store whose every Update loses races
// times to a concurrent writer (it runs fn again, as the backends do on a
// failed conditional write), and whose List fails.
type racingStore struct{ races int }

func (s *racingStore) Update(ctx context.Context, id string, fn func(*groupstore.Group) (*groupstore.Group, error)) error {
	for i := 0; i < s.races; i++ {
		if _, err := fn(nil); err != nil {
			return err
		}
	}
	_, err := fn(nil)
	return err
}

func (s *racingStore) List(context.Context, string, int) (groupstore.Listing, error) {
	return groupstore.Listing{}, errors.New("store down")
}

func (s *racingStore) Count(context.Context, string, int) (int, error) { return 0, nil }

// TestInstrumentStore: conflicts are fn's extra runs, a refusal of fn is
// not a store error, a failing List is, and a store without cursors does
// not gain them.
func TestInstrumentStore(t *testing.T) {
	m := metrics.New(nil, nil)
	st := m.InstrumentStore(&racingStore{races: 2})
	if _, ok := st.(groupstore.Cursors); ok {
		t.Error("the instrumented store has cursors its store lacks")
	}
	if err := st.Update(context.Background(), "0123456789abcdef", func(*groupstore.Group) (*groupstore.Group, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	refused := errors.New("quota")
	if err := st.Update(context.Background(), "0123456789abcdef", func(*groupstore.Group) (*groupstore.Group, error) { return nil, refused }); err != refused {
		t.Fatalf("Update: %v, want fn's error", err)
	}
	if _, err := st.List(context.Background(), "", 10); err == nil {
		t.Fatal("List did not fail")
	}
	if got := testutil.ToFloat64(m.StoreConflicts); got != 2 {
		t.Errorf("store_conflicts_total = %v, want 2 (the first Update ran fn three times; the second stopped at fn's error)", got)
	}
	for _, c := range []struct {
		op, result string
		want       float64
	}{{"update", "ok", 2}, {"update", "error", 0}, {"list", "error", 1}} {
		if got := testutil.ToFloat64(m.StoreOperations.WithLabelValues(c.op, c.result)); got != c.want {
			t.Errorf("store_operations_total{op=%s,result=%s} = %v, want %v", c.op, c.result, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.StoreDuration); n != 2 {
		t.Errorf("store_operation_duration_seconds has %d series, want update and list", n)
	}
	fs, err := groupstore.NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.InstrumentStore(fs).(groupstore.Cursors); ok != isCursors(fs) {
		t.Errorf("the file store's cursors: instrumented %v, store %v", ok, isCursors(fs))
	}
}

func isCursors(s groupstore.Store) bool { _, ok := s.(groupstore.Cursors); return ok }
