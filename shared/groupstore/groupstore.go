// Package groupstore keeps the Pushgateway's state for a stateless relay:
// the last pushed metrics of each group, its push time and last failure
// time, in a file directory or an object store (S3, or OSS through its
// S3-compatible API). Function instances share it; every change is a
// read-modify-write guarded by the backend's conditional write (a file
// lock, or If-Match on the object's ETag), retried on conflict, so
// concurrent pushes lose nothing.
package groupstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"

	"github.com/promrelay/promrelay/shared/wire"
)

// StaleNaN is the staleness marker: the NaN whose bits Prometheus reserves
// to mark a series as gone (value.StaleNaN in prometheus/model/value).
const StaleNaN uint64 = 0x7ff0000000000002

// Series is one stored series: its full label set (sorted, grouping labels
// included) and its value's bits.
type Series struct {
	Labels [][2]string `json:"l"`
	Value  uint64      `json:"v"` // math.Float64bits
}

// Family is one stored metric family.
type Family struct {
	Type   wire.MetadataType `json:"t"`
	Help   string            `json:"h,omitempty"`
	Unit   string            `json:"u,omitempty"`
	Series []Series          `json:"s"`
}

// Group is the state of one grouping key.
type Group struct {
	// ID is the group's store id, as the writer computed it (ID of the
	// grouping key and the writer's tenant); empty means ID(Key).
	ID string `json:"id,omitempty"`
	// Key is the label set of the group's push_time_seconds series
	// without __name__: the grouping labels plus external and tenant
	// labels, sorted.
	Key         [][2]string        `json:"key"`
	Tenant      string             `json:"tenant,omitempty"` // the writer's tenant, for its upstream
	PushTime    int64              `json:"push_ms"`          // last successful push, Unix ms; 0 if none
	FailureTime int64              `json:"failure_ms"`       // last failed push, Unix ms; 0 if none
	Families    map[string]*Family `json:"families"`
	// Stale are series that left the group and still need a staleness
	// marker upstream; they are cleared once one was accepted.
	Stale []Series `json:"stale,omitempty"`
	// Deleted marks a group deleted whose staleness markers are not yet
	// upstream; it is removed once they are.
	Deleted bool `json:"deleted,omitempty"`
}

// Store is a group store backend.
type Store interface {
	// Update applies fn to the group id (nil when it does not exist yet)
	// and stores what fn returns (nil deletes the group), atomically: when
	// another writer changed the group meanwhile, fn runs again on the new
	// state. An error from fn aborts the update and is returned.
	Update(ctx context.Context, id string, fn func(*Group) (*Group, error)) error
	// List returns up to limit groups whose ids sort after `after`, in id
	// order, and the id to continue from ("" at the end).
	List(ctx context.Context, after string, limit int) ([]*Group, string, error)
}

// ID returns the store id of a grouping key: a SHA-256 of its labels.
func ID(key []wire.Label) string {
	h := sha256.New()
	for _, l := range key {
		h.Write([]byte(l.Name))
		h.Write([]byte{0})
		h.Write([]byte(l.Value))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:40]
}

// Open returns the store for a PROMRELAY_STATE_URL: file:///dir,
// s3://bucket/prefix or oss://bucket/prefix. opts configure the object
// stores.
func Open(ctx context.Context, rawURL string, opts ObjectOptions) (Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("state URL %q: %v", rawURL, err)
	}
	switch u.Scheme {
	case "file":
		if u.Path == "" {
			return nil, fmt.Errorf("state URL %q: no directory", rawURL)
		}
		return NewFileStore(u.Path)
	case "s3", "oss":
		if u.Host == "" {
			return nil, fmt.Errorf("state URL %q: no bucket", rawURL)
		}
		return NewObjectStore(ctx, u.Scheme, u.Host, strings.Trim(u.Path, "/"), opts)
	}
	return nil, fmt.Errorf("state URL %q: scheme must be file, s3 or oss", rawURL)
}

// Cursors are implemented by stores that can remember where an
// interrupted re-emission stopped.
type Cursors interface {
	LoadCursor(ctx context.Context) (string, error)
	SaveCursor(ctx context.Context, after string) error
}

// ErrConflict is a conditional write that lost a race; Update retries it.
var ErrConflict = errors.New("concurrent update")

func encode(g *Group) ([]byte, error) { return json.Marshal(g) }

func decode(b []byte) (*Group, error) {
	var g Group
	if err := json.Unmarshal(b, &g); err != nil {
		return nil, fmt.Errorf("corrupt group: %w", err)
	}
	if g.Families == nil {
		g.Families = map[string]*Family{}
	}
	return &g, nil
}

// Labels converts stored labels to wire labels.
func Labels(ls [][2]string) []wire.Label {
	out := make([]wire.Label, len(ls))
	for i, l := range ls {
		out[i] = wire.Label{Name: l[0], Value: l[1]}
	}
	return out
}

// StoredLabels converts wire labels to stored labels, copying the strings.
func StoredLabels(ls []wire.Label) [][2]string {
	out := make([][2]string, len(ls))
	for i, l := range ls {
		out[i] = [2]string{strings.Clone(l.Name), strings.Clone(l.Value)}
	}
	return out
}

// seriesKey identifies a series by its labels.
func seriesKey(ls [][2]string) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l[0])
		b.WriteByte(0)
		b.WriteString(l[1])
		b.WriteByte(0)
	}
	return b.String()
}

// AllSeries returns every series of g, families in name order.
func (g *Group) AllSeries() []Series {
	if g == nil {
		return nil
	}
	names := make([]string, 0, len(g.Families))
	for n := range g.Families {
		names = append(names, n)
	}
	slices.Sort(names)
	var out []Series
	for _, n := range names {
		out = append(out, g.Families[n].Series...)
	}
	return out
}

// Removed returns the series of old that are not in new: those that need a
// staleness marker after new replaced old.
func Removed(old, new *Group) []Series {
	keep := map[string]bool{}
	for _, s := range new.AllSeries() {
		keep[seriesKey(s.Labels)] = true
	}
	var out []Series
	for _, s := range old.AllSeries() {
		if !keep[seriesKey(s.Labels)] {
			out = append(out, s)
		}
	}
	return out
}

// Float returns the stored value as a float64.
func (s Series) Float() float64 { return math.Float64frombits(s.Value) }

// StoreID returns the id g is stored under.
func (g *Group) StoreID() string {
	if g.ID != "" {
		return g.ID
	}
	return ID(Labels(g.Key))
}

// AddStale appends series to g.Stale, without duplicates.
func (g *Group) AddStale(series []Series) {
	have := map[string]bool{}
	for _, s := range g.Stale {
		have[seriesKey(s.Labels)] = true
	}
	for _, s := range series {
		if k := seriesKey(s.Labels); !have[k] {
			have[k] = true
			g.Stale = append(g.Stale, s)
		}
	}
}

// ClearStale removes from g.Stale the series in sent.
func (g *Group) ClearStale(sent []Series) {
	done := map[string]bool{}
	for _, s := range sent {
		done[seriesKey(s.Labels)] = true
	}
	kept := g.Stale[:0]
	for _, s := range g.Stale {
		if !done[seriesKey(s.Labels)] {
			kept = append(kept, s)
		}
	}
	g.Stale = kept
}
