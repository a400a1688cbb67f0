package groupstore_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/promrelay/promrelay/shared/groupstore"
)

// fakeS3 is the S3 API subset the object store uses — GetObject,
// PutObject and DeleteObject with If-Match / If-None-Match, ListObjectsV2 —
// in memory, path-style, so that the unit tests (make test-short) cover the
// object store without moto_server. TestStoreBackends runs the same cases
// against the real moto_server when not -short.
type fakeS3 struct {
	mu      sync.Mutex
	objects map[string][]byte // "bucket/key" → body
}

func (f *fakeS3) etag(b []byte) string {
	sum := md5.Sum(b)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

func s3Error(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, code)
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	name := bucket + "/" + key
	cur, exists := f.objects[name]
	switch {
	case r.Method == http.MethodGet && key == "":
		f.list(w, r, bucket)
	case r.Method == http.MethodGet:
		if !exists {
			s3Error(w, http.StatusNotFound, "NoSuchKey")
			return
		}
		w.Header().Set("ETag", f.etag(cur))
		w.Header().Set("Content-Length", strconv.Itoa(len(cur)))
		w.Write(cur)
	case r.Method == http.MethodPut || r.Method == http.MethodDelete:
		if m := r.Header.Get("If-Match"); m != "" && (!exists || m != f.etag(cur)) {
			s3Error(w, http.StatusPreconditionFailed, "PreconditionFailed")
			return
		}
		if r.Header.Get("If-None-Match") == "*" && exists {
			s3Error(w, http.StatusPreconditionFailed, "PreconditionFailed")
			return
		}
		if r.Method == http.MethodDelete {
			delete(f.objects, name)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		b, _ := io.ReadAll(r.Body)
		f.objects[name] = b
		w.Header().Set("ETag", f.etag(b))
		w.WriteHeader(http.StatusOK)
	default:
		s3Error(w, http.StatusMethodNotAllowed, "MethodNotAllowed")
	}
}

type listResult struct {
	XMLName               xml.Name `xml:"ListBucketResult"`
	Name                  string
	Prefix                string
	KeyCount              int
	MaxKeys               int
	IsTruncated           bool
	NextContinuationToken string `xml:",omitempty"`
	Contents              []struct {
		Key  string
		ETag string
		Size int
	}
}

func (f *fakeS3) list(w http.ResponseWriter, r *http.Request, bucket string) {
	q := r.URL.Query()
	prefix, after := q.Get("prefix"), q.Get("start-after")
	if tok := q.Get("continuation-token"); tok != "" {
		after = tok
	}
	max, err := strconv.Atoi(q.Get("max-keys"))
	if err != nil || max <= 0 {
		max = 1000
	}
	var keys []string
	for name := range f.objects {
		b, k, _ := strings.Cut(name, "/")
		if b == bucket && strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	res := listResult{Name: bucket, Prefix: prefix, MaxKeys: max}
	if len(keys) > max {
		keys = keys[:max]
		res.IsTruncated = true
		res.NextContinuationToken = keys[len(keys)-1]
	}
	for _, k := range keys {
		b := f.objects[bucket+"/"+k]
		res.Contents = append(res.Contents, struct {
			Key  string
			ETag string
			Size int
		}{k, f.etag(b), len(b)})
	}
	res.KeyCount = len(keys)
	w.Header().Set("Content-Type", "application/xml")
	out, _ := xml.Marshal(res)
	w.Write(append([]byte(xml.Header), out...))
}

// fakeS3Store is an object store on a fakeS3.
func fakeS3Store(t testing.TB) groupstore.Store {
	t.Helper()
	srv := httptest.NewServer(&fakeS3{objects: map[string][]byte{}})
	t.Cleanup(srv.Close)
	creds := config.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "testing", SecretAccessKey: "testing"}, nil
	}))
	opts := groupstore.ObjectOptions{Endpoint: srv.URL, Region: "us-east-1", PathStyle: true, ConfigOptions: []func(*config.LoadOptions) error{
		creds,
		// Plain bodies: no aws-chunked checksum trailers to decode.
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}}
	s, err := groupstore.NewObjectStore(context.Background(), "s3", "groups", "promrelay", opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
