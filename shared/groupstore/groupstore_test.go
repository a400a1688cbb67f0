package groupstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/promrelay/promrelay/internal/testpeer"
	"github.com/promrelay/promrelay/shared/groupstore"
	"github.com/promrelay/promrelay/shared/wire"
)

// MotoS3 starts moto_server, a real S3-protocol server, on loopback and
// returns a store on a fresh bucket.
func motoStore(t testing.TB) groupstore.Store {
	t.Helper()
	moto := testpeer.StartMoto(t)
	endpoint := moto.URL
	creds := config.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "testing", SecretAccessKey: "testing"}, nil
	}))
	opts := groupstore.ObjectOptions{Endpoint: endpoint, Region: "us-east-1", PathStyle: true, ConfigOptions: []func(*config.LoadOptions) error{creds}}
	s, err := groupstore.NewObjectStore(context.Background(), "s3", moto.Bucket, "promrelay", opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func backends(t *testing.T) map[string]groupstore.Store {
	fs, err := groupstore.NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]groupstore.Store{"file": fs, "s3-fake": fakeS3Store(t)}
	if !testing.Short() {
		// moto_server comes with the machine image; make test requires it.
		out["s3"] = motoStore(t)
	}
	return out
}

func TestStoreBackends(t *testing.T) {
	ctx := context.Background()
	for name, s := range backends(t) {
		t.Run(name, func(t *testing.T) {
			put := func(id string, fam string) {
				t.Helper()
				err := s.Update(ctx, id, func(g *groupstore.Group) (*groupstore.Group, error) {
					if g == nil {
						g = &groupstore.Group{Key: groupstore.LabelSet{{Name: "job", Value: id}}, Families: map[string]*groupstore.Family{}}
					}
					g.Families[fam] = &groupstore.Family{Series: []groupstore.Series{{Labels: groupstore.LabelSet{{Name: "__name__", Value: fam}, {Name: "job", Value: id}}, Value: 1}}}
					g.PushTime = time.Now().UnixMilli()
					return g, nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			ids := []string{"t00000001/g0000000a", "t00000001/g0000000b", "t00000002/g0000000a", "0123456789abcdef0123456789abcdef01234567"}
			for i := 0; i < 7; i++ {
				ids = append(ids, fmt.Sprintf("t00000003/g%08d", i))
			}
			for _, id := range ids {
				put(id, "m")
			}
			// List pages through every group once, in id order.
			var seen []string
			after := ""
			for pages := 0; ; pages++ {
				l, err := s.List(ctx, after, 3)
				if err != nil {
					t.Fatal(err)
				}
				for _, g := range l.Groups {
					seen = append(seen, g.ID)
				}
				if l.Next == "" {
					break
				}
				after = l.Next
				if pages > 10 {
					t.Fatal("List does not end")
				}
			}
			if len(seen) != len(ids) || !slices.IsSorted(seen) {
				t.Fatalf("listed %v, want each of %d groups once, sorted", seen, len(ids))
			}
			// Count per tenant folder.
			for prefix, want := range map[string]int{"t00000001/": 2, "t00000003/": 6, "t00000009/": 0} {
				if n, err := s.Count(ctx, prefix, 5); err != nil || n != want {
					t.Errorf("Count(%q, 5) = %d, %v; want %d (capped at max+1)", prefix, n, err, want)
				}
			}
			// Delete.
			if err := s.Update(ctx, "t00000001/g0000000a", func(*groupstore.Group) (*groupstore.Group, error) { return nil, nil }); err != nil {
				t.Fatal(err)
			}
			if n, _ := s.Count(ctx, "t00000001/", 10); n != 1 {
				t.Fatalf("%d groups of the tenant after a delete, want 1", n)
			}
			// Concurrent writers to one group lose nothing.
			var wg sync.WaitGroup
			for w := 0; w < 20; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					put("t00000004/gshared00", fmt.Sprintf("fam%02d", w))
				}(w)
			}
			wg.Wait()
			var shared *groupstore.Group
			s.Update(ctx, "t00000004/gshared00", func(g *groupstore.Group) (*groupstore.Group, error) { shared = g; return g, nil })
			if shared == nil || len(shared.Families) != 20 {
				t.Fatalf("concurrent updates lost families: %d of 20", len(shared.Families))
			}
			// Ids that are not the relay's never reach a path or a key.
			for _, bad := range []string{"../../etc/passwd", "a/b/c", "", "UPPERCASE", "short"} {
				if err := s.Update(ctx, bad, func(g *groupstore.Group) (*groupstore.Group, error) { return g, nil }); err == nil {
					t.Errorf("Update(%q) accepted an invalid id", bad)
				}
			}
		})
	}
}

// TestFileStoreRemovesLockFiles checks that deleting a group removes its
// lock file too, also while other writers wait for the lock, without two
// writers ever holding it at once.
func TestFileStoreRemovesLockFiles(t *testing.T) {
	dir := t.TempDir()
	s, err := groupstore.NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const id = "t0000000a/g0000000a"
	var inside, overlaps atomic.Int32
	var wg sync.WaitGroup
	for w := 0; w < 40; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			err := s.Update(ctx, id, func(g *groupstore.Group) (*groupstore.Group, error) {
				if inside.Add(1) > 1 {
					overlaps.Add(1)
				}
				defer inside.Add(-1)
				time.Sleep(100 * time.Microsecond)
				if w%2 == 0 {
					return nil, nil // delete
				}
				return &groupstore.Group{Families: map[string]*groupstore.Family{}}, nil
			})
			if err != nil {
				t.Error(err)
			}
		}(w)
	}
	wg.Wait()
	if overlaps.Load() > 0 {
		t.Fatalf("%d updates ran while another held the lock", overlaps.Load())
	}
	if err := s.Update(ctx, id, func(*groupstore.Group) (*groupstore.Group, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
	if len(left) != 0 {
		t.Fatalf("files left after deleting the group: %v", left)
	}
	// An update of a group that does not exist and is refused (a limit)
	// or changes nothing leaves no lock file either.
	for i, fn := range []func(*groupstore.Group) (*groupstore.Group, error){
		func(*groupstore.Group) (*groupstore.Group, error) { return nil, errors.New("over a limit") },
		func(*groupstore.Group) (*groupstore.Group, error) { return nil, nil },
	} {
		s.Update(ctx, fmt.Sprintf("t0000000b/g%08d", i), fn)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*", "*")); len(left) != 0 {
		t.Fatalf("files left by refused updates: %v", left)
	}
}

// TestFileStoreLockWaitEndsWithContext checks that an Update waiting for a
// held lock gives up when its context ends.
func TestFileStoreLockWaitEndsWithContext(t *testing.T) {
	s, err := groupstore.NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const id = "t0000000a/g0000000b"
	held := make(chan struct{})
	release := make(chan struct{})
	go s.Update(context.Background(), id, func(g *groupstore.Group) (*groupstore.Group, error) {
		close(held)
		<-release
		return g, nil
	})
	<-held
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = s.Update(ctx, id, func(g *groupstore.Group) (*groupstore.Group, error) { return g, nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Update on a held lock = %v, want the context's deadline", err)
	}
}

// TestReadsBothLabelForms checks that groups written by promrelay 0.1
// (labels as [name, value] pairs) still decode, and that a corrupt group is
// reported by List and skipped, not fatal.
func TestReadsBothLabelForms(t *testing.T) {
	dir := t.TempDir()
	old := `{"key":[["job","j"]],"push_ms":5,"failure_ms":0,"families":{"m":{"t":2,"s":[{"l":[["__name__","m"],["job","j"]],"v":4607182418800017408}]}}}`
	cur := `{"key":[{"Name":"job","Value":"k"}],"push_ms":6,"failure_ms":0,"families":{}}`
	for name, body := range map[string]string{
		"0123456789abcdef0123456789abcdef01234567.json": old,
		"1123456789abcdef0123456789abcdef01234567.json": cur,
		"2123456789abcdef0123456789abcdef01234567.json": `{"key": [`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, _ := groupstore.NewFileStore(dir)
	l, err := s.List(context.Background(), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Groups) != 2 || len(l.Corrupt) != 1 {
		t.Fatalf("listed %d groups and %d corrupt, want 2 and 1", len(l.Groups), len(l.Corrupt))
	}
	g := l.Groups[0]
	if g.Key[0] != (wire.Label{Name: "job", Value: "j"}) || g.Families["m"].Series[0].Labels[1].Value != "j" || g.Families["m"].Series[0].Float() != 1 {
		t.Fatalf("old form decoded as %+v", g)
	}
	if l.Groups[1].Key[0].Value != "k" {
		t.Fatalf("new form decoded as %+v", l.Groups[1])
	}
}

// countingReservation records what the store reserves, and refuses past
// max bytes.
type countingReservation struct {
	grown, max int64
}

func (r *countingReservation) Grow(_ context.Context, n int64) error {
	if r.grown+n > r.max {
		return fmt.Errorf("over budget")
	}
	r.grown += n
	return nil
}
func (r *countingReservation) Release() { r.grown = 0 }

// TestReadsAreReserved: every group a read decodes is reserved first
// (DecodeBytesPerByte per stored byte), and a refused reservation stops
// the read.
func TestReadsAreReserved(t *testing.T) {
	ctx := context.Background()
	for name, s := range backends(t) {
		t.Run(name, func(t *testing.T) {
			id := "t00000009/g00000001"
			err := s.Update(ctx, id, func(*groupstore.Group) (*groupstore.Group, error) {
				return &groupstore.Group{Key: groupstore.LabelSet{{Name: "job", Value: "j"}}, Families: map[string]*groupstore.Family{}}, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			r := &countingReservation{max: 1 << 20}
			rctx := groupstore.WithReservation(ctx, r)
			if err := s.Update(rctx, id, func(g *groupstore.Group) (*groupstore.Group, error) { return g, nil }); err != nil {
				t.Fatal(err)
			}
			if r.grown < 8*20 || r.grown%groupstore.DecodeBytesPerByte != 0 {
				t.Fatalf("Update reserved %d bytes", r.grown)
			}
			r.grown = 0
			if _, err := s.List(rctx, "", 10); err != nil || r.grown == 0 {
				t.Fatalf("List reserved %d bytes, %v", r.grown, err)
			}
			refuse := groupstore.WithReservation(ctx, &countingReservation{max: 0})
			called := false
			if err := s.Update(refuse, id, func(g *groupstore.Group) (*groupstore.Group, error) { called = true; return g, nil }); err == nil || called {
				t.Fatalf("Update past the budget: %v, fn called %v", err, called)
			}
			// A group the budget refuses on its own is skipped as too
			// large, so that it cannot stop the scheduled job.
			l, err := s.List(refuse, "", 10)
			if err != nil || len(l.Groups) != 0 || !errors.Is(l.Corrupt[id], groupstore.ErrTooLarge) {
				t.Fatalf("List past the budget: %+v, %v", l, err)
			}
			// With room for one group, the page ends after it.
			s.Update(ctx, "t00000009/g00000002", func(*groupstore.Group) (*groupstore.Group, error) {
				return &groupstore.Group{Key: groupstore.LabelSet{{Name: "job", Value: "k"}}, Families: map[string]*groupstore.Family{}}, nil
			})
			one := groupstore.WithReservation(ctx, &countingReservation{max: r.grown + r.grown/2})
			l, err = s.List(one, "", 10)
			if err != nil || len(l.Groups) != 1 || l.Next != id {
				t.Fatalf("List with room for one group: %d groups, next %q, %v", len(l.Groups), l.Next, err)
			}
		})
	}
}

// TestKeepWritesNothing: an update that returns ErrKeep leaves the group
// untouched and creates nothing.
func TestKeepWritesNothing(t *testing.T) {
	ctx := context.Background()
	for name, s := range backends(t) {
		t.Run(name, func(t *testing.T) {
			if err := s.Update(ctx, "t0000000c/g00000001", func(*groupstore.Group) (*groupstore.Group, error) { return nil, groupstore.ErrKeep }); err != nil {
				t.Fatal(err)
			}
			if n, err := s.Count(ctx, "t0000000c/", 10); err != nil || n != 0 {
				t.Fatalf("after a kept update of nothing: %d groups, %v", n, err)
			}
			id := "t0000000c/g00000002"
			s.Update(ctx, id, func(*groupstore.Group) (*groupstore.Group, error) {
				return &groupstore.Group{PushTime: 1, Families: map[string]*groupstore.Family{}}, nil
			})
			if err := s.Update(ctx, id, func(g *groupstore.Group) (*groupstore.Group, error) { g.PushTime = 2; return nil, groupstore.ErrKeep }); err != nil {
				t.Fatal(err)
			}
			l, err := s.List(ctx, "t0000000c/", 10)
			if err != nil || len(l.Groups) != 1 || l.Groups[0].PushTime != 1 {
				t.Fatalf("after a kept update: %+v, %v", l.Groups, err)
			}
		})
	}
}
