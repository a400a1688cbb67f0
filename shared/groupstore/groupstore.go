// Package groupstore stores the Pushgateway's state for a relay whose
// instances keep nothing between invocations: the last pushed series of
// each group, its push and failure times, and the staleness markers it
// still owes the upstream, in a file directory or an object store (S3, or
// OSS through its S3-compatible API). Function instances share it. Every
// change is a read-modify-write guarded by the backend's conditional write
// (a file lock, or If-Match on the object's ETag), retried on conflict, so
// concurrent pushes lose nothing.
//
// This package is storage only: what a push, a delete or the scheduled job
// does to a group is shared/pushstate's business.
package groupstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strings"

	"github.com/promrelay/promrelay/shared/wire"
)

// Series is one stored series: its full label set (sorted by name,
// grouping, external and tenant labels included) and its value's bits.
type Series struct {
	Labels LabelSet `json:"l"`
	Value  uint64   `json:"v"` // math.Float64bits
}

// Float returns the stored value as a float64.
func (s Series) Float() float64 { return math.Float64frombits(s.Value) }

// LabelSet is a label set as stored. It is written as a JSON array of
// {"Name","Value"} objects, and also read from the [["name","value"],…]
// pairs that promrelay 0.1 wrote.
type LabelSet []wire.Label

// UnmarshalJSON implements json.Unmarshaler for both stored forms.
func (ls *LabelSet) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.HasPrefix(b, []byte("[[")) {
		var pairs [][2]string
		if err := json.Unmarshal(b, &pairs); err != nil {
			return err
		}
		out := make(LabelSet, len(pairs))
		for i, p := range pairs {
			out[i] = wire.Label{Name: p[0], Value: p[1]}
		}
		*ls = out
		return nil
	}
	var out []wire.Label
	if err := json.Unmarshal(b, &out); err != nil {
		return err
	}
	*ls = out
	return nil
}

// Family is one stored metric family.
type Family struct {
	Type   wire.MetadataType `json:"t"`
	Help   string            `json:"h,omitempty"`
	Unit   string            `json:"u,omitempty"`
	Series []Series          `json:"s"`
}

// Group is the state of one group, as a push of one writer left it.
type Group struct {
	// ID is the id the group is stored under.
	ID string `json:"id,omitempty"`
	// Key is the label set of the group's push_time_seconds series
	// without __name__: the grouping labels plus the external and tenant
	// labels, sorted by name.
	Key LabelSet `json:"key"`
	// Tenant is the writer's tenant ("" for none): the re-emission sends
	// the group to that tenant's upstream.
	Tenant      string             `json:"tenant,omitempty"`
	PushTime    int64              `json:"push_ms"`    // last successful push, Unix ms; 0 if none
	FailureTime int64              `json:"failure_ms"` // last failed push, Unix ms; 0 if none
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
	// Update applies fn to the group id (nil when it does not exist yet,
	// or when what is stored cannot be decoded) and stores what fn returns
	// (nil deletes the group), atomically: when
	// another writer changed the group meanwhile, fn runs again on the new
	// state. An error from fn aborts the update and is returned. Update
	// gives up with ctx's error when ctx ends first.
	Update(ctx context.Context, id string, fn func(*Group) (*Group, error)) error
	// List returns up to limit groups whose ids sort after `after`, in id
	// order, and the id to continue from ("" at the end). Groups that
	// cannot be decoded are reported in Listing.Corrupt, not returned.
	// When ctx's Reservation refuses a group, the page ends before it
	// (or, if it is the page's first, the group is reported in Corrupt
	// with ErrTooLarge).
	List(ctx context.Context, after string, limit int) (Listing, error)
	// Count returns the number of groups whose ids start with prefix,
	// counting no further than max+1.
	Count(ctx context.Context, prefix string, max int) (int, error)
}

// Listing is one page of List.
type Listing struct {
	Groups  []*Group
	Corrupt map[string]error // id → why it could not be decoded
	Next    string           // the id to continue after; "" at the end
}

// Cursors are implemented by stores that can remember where an
// interrupted scheduled run stopped.
type Cursors interface {
	LoadCursor(ctx context.Context) (string, error)
	SaveCursor(ctx context.Context, after string) error
}

// ErrTooLarge is a group List could not reserve memory for while the page
// held nothing else: it is reported in Listing.Corrupt (and skipped), so
// that one huge group cannot stop the scheduled job for every other.
var ErrTooLarge = errors.New("the group does not fit the memory budget")

// ErrKeep, returned by an Update function, leaves the stored group as it
// is (nothing is written, and Update returns nil): a read, or a change that
// turned out not to be needed, costs no write.
var ErrKeep = errors.New("group store: keep the group as it is")

// ErrConflict is a conditional write that kept losing races: Update gave
// up after retrying.
var ErrConflict = errors.New("concurrent update")

// validID is the shape of the ids promrelay computes: lower-case hex,
// optionally under one lower-case hex folder (a tenant). Anything else
// never reaches a file path or an object key.
var validID = regexp.MustCompile(`^[0-9a-z]{8,64}(/[0-9a-z]{8,64})?$`)

func checkID(id string) error {
	if !validID.MatchString(id) {
		return fmt.Errorf("group store: invalid group id %q", id)
	}
	return nil
}

// Open returns the store for a PROMRELAY_STATE_URL: file:///dir,
// s3://bucket/prefix or oss://bucket/prefix. opts configure the object
// stores. Errors name the URL and the problem.
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

// Reservation accounts the memory the store's reads cost (relay.Budget's
// reservations implement it): Update and List call Grow before they decode
// a group, with DecodeBytesPerByte per stored byte, and return its error
// (the read is then not done). Release gives back all that was grown; the
// scheduled job calls it between pages.
type Reservation interface {
	Grow(ctx context.Context, bytes int64) error
	Release()
}

// DecodeBytesPerByte is what a group costs in memory, decoded and while it
// is decoded, per byte of its stored JSON: 10,000 stored series of about
// 115 bytes each decode to 364 bytes each live, with the decoder's garbage
// on top.
const DecodeBytesPerByte = 8

type reservationKey struct{}

// WithReservation returns a context whose store reads are accounted in r.
func WithReservation(ctx context.Context, r Reservation) context.Context {
	return context.WithValue(ctx, reservationKey{}, r)
}

// ReservationFrom returns the Reservation of ctx, or nil.
func ReservationFrom(ctx context.Context) Reservation {
	r, _ := ctx.Value(reservationKey{}).(Reservation)
	return r
}

// reserve accounts a read of stored bytes in ctx's reservation.
func reserve(ctx context.Context, stored int) error {
	if r := ReservationFrom(ctx); r != nil {
		return r.Grow(ctx, int64(stored)*DecodeBytesPerByte)
	}
	return nil
}

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
