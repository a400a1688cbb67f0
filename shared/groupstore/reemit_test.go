package groupstore_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"testing"
	"time"

	"github.com/promrelay/promrelay/shared/groupstore"
	"github.com/promrelay/promrelay/shared/wire"
)

func fill(t testing.TB, s groupstore.Store, n int, pushed time.Time) {
	ctx := context.Background()
	for i := 0; i < n; i++ {
		job := fmt.Sprintf("job%05d", i)
		key := []wire.Label{{Name: "job", Value: job}}
		err := s.Update(ctx, groupstore.ID(key), func(*groupstore.Group) (*groupstore.Group, error) {
			g := &groupstore.Group{Key: groupstore.StoredLabels(key), PushTime: pushed.UnixMilli(), Families: map[string]*groupstore.Family{}}
			f := &groupstore.Family{Type: wire.MetadataGauge}
			for j := 0; j < 5; j++ {
				f.Series = append(f.Series, groupstore.Series{Labels: [][2]string{{"__name__", "m"}, {"job", job}, {"k", fmt.Sprint(j)}}, Value: math.Float64bits(float64(j))})
			}
			g.Families["m"] = f
			return g, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestReemitAndTTL(t *testing.T) {
	for name, s := range backends(t) {
		t.Run(name, func(t *testing.T) {
			now := time.Now()
			fill(t, s, 3, now.Add(-2*time.Hour))
			var written []wire.Series
			var samples int
			write := func(_ context.Context, tenant string, wr *wire.WriteRequest) error {
				for _, se := range wr.Series {
					written = append(written, wire.Series{Labels: append([]wire.Label(nil), se.Labels...), Samples: append([]wire.Sample(nil), se.Samples...)})
				}
				samples += len(wr.Series)
				return nil
			}
			res, err := groupstore.Reemit(context.Background(), s, write, now, 0, 4)
			if err != nil || !res.Complete || res.Groups != 3 || samples != 3*(5+2) {
				t.Fatalf("re-emission: %+v %v, %d samples", res, err, samples)
			}
			for _, se := range written {
				if se.Samples[0].Timestamp != now.UnixMilli() {
					t.Fatalf("stale timestamp on %v", se.Labels)
				}
			}
			// A TTL of 1 h expires all three: staleness markers, then gone.
			written, samples = nil, 0
			res, err = groupstore.Reemit(context.Background(), s, write, now, time.Hour, 100)
			if err != nil || res.Expired != 3 {
				t.Fatalf("TTL run: %+v %v", res, err)
			}
			for _, se := range written {
				if math.Float64bits(se.Samples[0].Value) != groupstore.StaleNaN {
					t.Fatalf("expired group re-emitted a live value: %v", se.Labels)
				}
			}
			if samples != 3*(5+2) {
				t.Fatalf("%d staleness markers, want %d", samples, 3*7)
			}
			left, _, _ := s.List(context.Background(), "", 100)
			if len(left) != 0 {
				t.Fatalf("%d expired groups left in the store", len(left))
			}
		})
	}
}

// BenchmarkReemit10k re-emits 10,000 groups of 5 series each to a null
// upstream, from the file store and from S3 (moto_server on loopback).
func BenchmarkReemit10k(b *testing.B) {
	stores := map[string]groupstore.Store{}
	fs, _ := groupstore.NewFileStore(b.TempDir())
	stores["file"] = fs
	if os.Getenv("PROMRELAY_BENCH_S3") != "" {
		stores["s3"] = motoStoreB(b)
	}
	for name, s := range stores {
		fill(b, s, 10000, time.Now())
		b.Run("store="+name, func(b *testing.B) {
			for b.Loop() {
				res, err := groupstore.Reemit(context.Background(), s, func(context.Context, string, *wire.WriteRequest) error { return nil }, time.Now(), 0, 5000)
				if err != nil || res.Groups != 10000 {
					b.Fatalf("%+v %v", res, err)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/run")
		})
	}
}

// slowList makes every List take a while, so a deadline interrupts a run.
type slowList struct{ groupstore.Store }

func (s slowList) List(ctx context.Context, after string, limit int) ([]*groupstore.Group, string, error) {
	time.Sleep(60 * time.Millisecond)
	return s.Store.List(ctx, after, limit)
}

func (s slowList) LoadCursor(ctx context.Context) (string, error) {
	return s.Store.(groupstore.Cursors).LoadCursor(ctx)
}

func (s slowList) SaveCursor(ctx context.Context, after string) error {
	return s.Store.(groupstore.Cursors).SaveCursor(ctx, after)
}

func TestReemitResumesAfterDeadline(t *testing.T) {
	fs, _ := groupstore.NewFileStore(t.TempDir())
	fill(t, fs, 250, time.Now())
	s := slowList{fs}
	noop := func(context.Context, string, *wire.WriteRequest) error { return nil }
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	first, err := groupstore.Reemit(ctx, s, noop, time.Now(), 0, 5000)
	if err != nil || first.Complete || first.Groups == 0 || first.Groups >= 250 {
		t.Fatalf("interrupted run: %+v %v", first, err)
	}
	second, err := groupstore.Reemit(context.Background(), s, noop, time.Now(), 0, 5000)
	if err != nil || !second.Complete || first.Groups+second.Groups != 250 {
		t.Fatalf("resumed run: %+v after %+v, %v; want the remaining groups", second, first, err)
	}
	third, _ := groupstore.Reemit(context.Background(), s, noop, time.Now(), 0, 5000)
	if third.Groups != 250 {
		t.Fatalf("a complete run after resuming covers %d groups, want 250", third.Groups)
	}
}
