package groupstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// ObjectOptions configure the object-store backends.
type ObjectOptions struct {
	// Endpoint overrides the S3 endpoint URL (S3-compatible servers); for
	// oss:// it defaults to https://s3.oss-<Region>.aliyuncs.com.
	Endpoint string
	// Region is the bucket's region (PROMRELAY_STATE_REGION); required
	// for oss://, whose endpoint it names; else the SDK's default.
	Region string
	// PathStyle addresses buckets in the path (S3-compatible servers).
	PathStyle bool
	// Credentials, when set, sign the store's requests instead of the AWS
	// SDK's default chain; oss:// requires them (Alibaba Cloud credentials,
	// adapted to the SDK).
	Credentials aws.CredentialsProvider
	// ConfigOptions are passed to config.LoadDefaultConfig (tests).
	ConfigOptions []func(*config.LoadOptions) error
}

// ObjectStore keeps one JSON object per group under a prefix of a bucket.
// An update reads the object and its ETag and writes it back with If-Match
// (If-None-Match: * for a new group), retrying when another writer won.
// oss:// uses OSS's S3-compatible API with the Alibaba Cloud credentials in
// ObjectOptions.Credentials.
type ObjectStore struct {
	client *s3.Client
	bucket string
	prefix string
}

// NewObjectStore returns the store for bucket/prefix; scheme is "s3" or
// "oss". Errors are for options that cannot work (oss:// without a region or
// credentials) and from loading the AWS SDK configuration.
func NewObjectStore(ctx context.Context, scheme, bucket, prefix string, o ObjectOptions) (*ObjectStore, error) {
	opts := append([]func(*config.LoadOptions) error{}, o.ConfigOptions...)
	if o.Region != "" {
		opts = append(opts, config.WithRegion(o.Region))
	}
	if scheme == "oss" {
		if o.Region == "" {
			return nil, errors.New("oss:// needs PROMRELAY_STATE_REGION (e.g. cn-hangzhou)")
		}
		if o.Endpoint == "" {
			o.Endpoint = "https://s3.oss-" + o.Region + ".aliyuncs.com"
		}
		if o.Credentials == nil {
			return nil, errors.New("oss:// needs Alibaba Cloud credentials")
		}
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("group store: %w", err)
	}
	client := s3.NewFromConfig(cfg, func(so *s3.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
		so.UsePathStyle = o.PathStyle
		// Set on the client, not through config.WithCredentialsProvider,
		// which wraps the provider in a cache of its own: the provider
		// decides how long its credentials live.
		if o.Credentials != nil {
			so.Credentials = o.Credentials
		}
	})
	if prefix != "" {
		prefix += "/"
	}
	return &ObjectStore{client: client, bucket: bucket, prefix: prefix}, nil
}

func (s *ObjectStore) key(id string) string { return s.prefix + id + ".json" }

func conflict(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "PreconditionFailed", "ConditionalRequestConflict":
			return true
		}
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode() == http.StatusPreconditionFailed || re.HTTPStatusCode() == http.StatusConflict
	}
	return false
}

func notFound(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && (ae.ErrorCode() == "NoSuchKey" || ae.ErrorCode() == "NotFound")
}

// Update implements Store.
func (s *ObjectStore) Update(ctx context.Context, id string, fn func(*Group) (*Group, error)) error {
	if err := checkID(id); err != nil {
		return err
	}
	reserved := 0 // bytes reserved by earlier attempts
	for attempt := 0; attempt < 20; attempt++ {
		var cur *Group
		etag := ""
		out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(s.key(id))})
		switch {
		case err == nil:
			b, rerr := io.ReadAll(out.Body)
			out.Body.Close()
			if rerr != nil {
				return fmt.Errorf("group store: %w", rerr)
			}
			if len(b) > reserved {
				if err := reserve(ctx, len(b)-reserved); err != nil {
					return err
				}
				reserved = len(b)
			}
			// A group that cannot be decoded is as good as absent: fn
			// replaces or removes it (List reports it meanwhile).
			cur, _ = decode(b)
			etag = aws.ToString(out.ETag)
		case notFound(err):
		default:
			return fmt.Errorf("group store: %w", err)
		}
		next, err := fn(cur)
		if errors.Is(err, ErrKeep) {
			return nil
		}
		if err != nil {
			return err
		}
		if next == nil {
			if etag == "" {
				return nil // nothing stored
			}
			_, err = s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: aws.String(s.key(id)), IfMatch: aws.String(etag)})
		} else {
			b, eerr := encode(next)
			if eerr != nil {
				return eerr
			}
			in := &s3.PutObjectInput{Bucket: &s.bucket, Key: aws.String(s.key(id)), Body: bytes.NewReader(b), ContentType: aws.String("application/json")}
			if etag != "" {
				in.IfMatch = aws.String(etag)
			} else {
				in.IfNoneMatch = aws.String("*")
			}
			_, err = s.client.PutObject(ctx, in)
		}
		if err == nil {
			return nil
		}
		if !conflict(err) {
			return fmt.Errorf("group store: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("group store: %w: %w", ErrConflict, ctx.Err())
		case <-time.After(conflictBackoff(attempt)):
		}
	}
	return fmt.Errorf("group store: %w after 20 attempts", ErrConflict)
}

// conflictBackoff is the wait before the attempt after a lost conditional
// write: exponential from 10 ms up to 640 ms, with full jitter over its
// upper half, so that writers that collided do not collide again in step.
func conflictBackoff(attempt int) time.Duration {
	d := 10 * time.Millisecond << min(attempt, 6)
	return d/2 + rand.N(d/2+1)
}

// List implements Store.
func (s *ObjectStore) List(ctx context.Context, after string, limit int) (Listing, error) {
	in := &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: aws.String(s.prefix), MaxKeys: aws.Int32(int32(limit))}
	if after != "" {
		in.StartAfter = aws.String(s.key(after))
	}
	out, err := s.client.ListObjectsV2(ctx, in)
	if err != nil {
		return Listing{}, fmt.Errorf("group store: %w", err)
	}
	// Reserve the page's objects in order, by the sizes the listing
	// gives, before reading any: the page ends where the reservation
	// does. Then read them eight at a time, keeping their order.
	var ids []string
	var l Listing
	last := ""
	truncated := aws.ToBool(out.IsTruncated)
	for _, obj := range out.Contents {
		id, ok := strings.CutSuffix(strings.TrimPrefix(aws.ToString(obj.Key), s.prefix), ".json")
		if !ok {
			continue
		}
		if checkID(id) == nil {
			if err := reserve(ctx, int(aws.ToInt64(obj.Size))); err != nil {
				if len(ids) > 0 {
					truncated = true
					break
				}
				if l.Corrupt == nil {
					l.Corrupt = map[string]error{}
				}
				l.Corrupt[id] = fmt.Errorf("%w: %w", ErrTooLarge, err)
				last = id
				continue
			}
			ids = append(ids, id)
		}
		last = id
	}
	found := make([]*Group, len(ids))
	errs := make([]error, len(ids))
	corrupt := make([]error, len(ids))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			got, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(s.key(id))})
			if notFound(err) {
				return // deleted meanwhile
			}
			if err != nil {
				errs[i] = fmt.Errorf("group store: %w", err)
				return
			}
			b, err := io.ReadAll(got.Body)
			got.Body.Close()
			if err != nil {
				errs[i] = fmt.Errorf("group store: %w", err)
				return
			}
			found[i], corrupt[i] = decode(b)
		}()
	}
	wg.Wait()
	for i, id := range ids {
		switch {
		case errs[i] != nil:
			return Listing{}, errs[i]
		case corrupt[i] != nil:
			if l.Corrupt == nil {
				l.Corrupt = map[string]error{}
			}
			l.Corrupt[id] = corrupt[i]
		case found[i] != nil:
			if found[i].ID == "" {
				found[i].ID = id
			}
			l.Groups = append(l.Groups, found[i])
		}
	}
	if truncated {
		l.Next = last
	}
	return l, nil
}

// Count implements Store.
func (s *ObjectStore) Count(ctx context.Context, prefix string, max int) (int, error) {
	in := &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: aws.String(s.prefix + prefix), MaxKeys: aws.Int32(int32(min(max+1, 1000)))}
	n := 0
	for {
		out, err := s.client.ListObjectsV2(ctx, in)
		if err != nil {
			return 0, fmt.Errorf("group store: %w", err)
		}
		for _, obj := range out.Contents {
			if strings.HasSuffix(aws.ToString(obj.Key), ".json") {
				n++
			}
		}
		if n > max || !aws.ToBool(out.IsTruncated) {
			return n, nil
		}
		in.ContinuationToken = out.NextContinuationToken
	}
}

// LoadCursor implements Cursors.
func (s *ObjectStore) LoadCursor(ctx context.Context) (string, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(s.prefix + "_cursor")})
	if notFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("group store: %w", err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	return string(b), err
}

// SaveCursor implements Cursors.
func (s *ObjectStore) SaveCursor(ctx context.Context, after string) error {
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.bucket, Key: aws.String(s.prefix + "_cursor"), Body: strings.NewReader(after)})
	if err != nil {
		return fmt.Errorf("group store: %w", err)
	}
	return nil
}
