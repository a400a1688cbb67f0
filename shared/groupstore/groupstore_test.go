package groupstore_test

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/promrelay/promrelay/internal/testpeer"
	"github.com/promrelay/promrelay/shared/groupstore"
)

// MotoS3 starts moto_server, a real S3-protocol server, on loopback and
// returns a store on a fresh bucket.
func motoStore(t *testing.T) groupstore.Store { return motoStoreB(t) }

func motoStoreB(t testing.TB) groupstore.Store {
	t.Helper()
	bin := testpeer.Require(t, "moto_server")
	port := testpeer.FreePort(t)
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
	for i := 0; i < 100; i++ {
		if resp, err := http.Get(endpoint); err == nil {
			resp.Body.Close()
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	creds := config.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "testing", SecretAccessKey: "testing"}, nil
	}))
	opts := groupstore.ObjectOptions{Endpoint: endpoint, Region: "us-east-1", PathStyle: true, ConfigOptions: []func(*config.LoadOptions) error{creds}}
	cfg, _ := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"), creds)
	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(endpoint); o.UsePathStyle = true })
	if _, err := client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("groups")}); err != nil {
		t.Fatal(err)
	}
	s, err := groupstore.NewObjectStore(context.Background(), "s3", "groups", "promrelay", opts)
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
	out := map[string]groupstore.Store{"file": fs}
	// moto_server comes with the machine image (DESIGN.md §7): guarded,
	// like cfn-lint and terraform, rather than installed.
	if _, err := exec.LookPath("moto_server"); err == nil {
		out["s3"] = motoStore(t)
	} else {
		t.Log("moto_server is not installed: the S3 backend is not tested here")
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
						g = &groupstore.Group{Key: [][2]string{{"job", id}}, Families: map[string]*groupstore.Family{}}
					}
					g.Families[fam] = &groupstore.Family{Series: []groupstore.Series{{Labels: [][2]string{{"__name__", fam}, {"job", id}}, Value: 1}}}
					g.PushTime = time.Now().UnixMilli()
					return g, nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; i < 7; i++ {
				put(fmt.Sprintf("g%02d", i), "m")
			}
			// List pages through every group once.
			seen := map[string]bool{}
			after := ""
			for pages := 0; ; pages++ {
				gs, next, err := s.List(ctx, after, 3)
				if err != nil {
					t.Fatal(err)
				}
				for _, g := range gs {
					seen[g.Key[0][1]] = true
				}
				if next == "" {
					break
				}
				after = next
				if pages > 10 {
					t.Fatal("List does not end")
				}
			}
			if len(seen) != 7 {
				t.Fatalf("listed %d groups, want 7: %v", len(seen), seen)
			}
			// Delete.
			if err := s.Update(ctx, "g03", func(*groupstore.Group) (*groupstore.Group, error) { return nil, nil }); err != nil {
				t.Fatal(err)
			}
			gs, _, _ := s.List(ctx, "", 100)
			if len(gs) != 6 {
				t.Fatalf("%d groups after a delete, want 6", len(gs))
			}
			// Concurrent writers to one group lose nothing.
			var wg sync.WaitGroup
			for w := 0; w < 20; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					put("shared", fmt.Sprintf("fam%02d", w))
				}(w)
			}
			wg.Wait()
			var shared *groupstore.Group
			s.Update(ctx, "shared", func(g *groupstore.Group) (*groupstore.Group, error) { shared = g; return g, nil })
			if shared == nil || len(shared.Families) != 20 {
				t.Fatalf("concurrent updates lost families: %d of 20", len(shared.Families))
			}
		})
	}
}

func TestRemoved(t *testing.T) {
	s := func(name string) groupstore.Series {
		return groupstore.Series{Labels: [][2]string{{"__name__", name}}}
	}
	old := &groupstore.Group{Families: map[string]*groupstore.Family{"a": {Series: []groupstore.Series{s("a"), s("a2")}}, "b": {Series: []groupstore.Series{s("b")}}}}
	new := &groupstore.Group{Families: map[string]*groupstore.Family{"a": {Series: []groupstore.Series{s("a")}}}}
	got := groupstore.Removed(old, new)
	if len(got) != 2 || got[0].Labels[0][1] != "a2" || got[1].Labels[0][1] != "b" {
		t.Fatalf("removed %v", got)
	}
	if len(groupstore.Removed(old, nil)) != 3 {
		t.Fatal("removed vs nil")
	}
}
