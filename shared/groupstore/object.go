package groupstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aliyun/credentials-go/credentials/providers"
	"github.com/aliyun/fc-runtime-go-sdk/fccontext"
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
	Region   string
	// PathStyle addresses buckets in the path (S3-compatible servers).
	PathStyle bool
	// ConfigOptions are passed to config.LoadDefaultConfig (tests).
	ConfigOptions []func(*config.LoadOptions) error
}

// ObjectStore keeps one JSON object per group under a prefix of a bucket.
// An update reads the object and its ETag and writes it back with If-Match
// (If-None-Match: * for a new group), retrying when another writer won.
// oss:// uses OSS's S3-compatible API with Alibaba Cloud credentials (the
// Function Compute invocation's, else credentials-go's default chain).
type ObjectStore struct {
	client *s3.Client
	bucket string
	prefix string
}

// NewObjectStore returns the store for bucket/prefix.
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
		opts = append(opts, config.WithCredentialsProvider(aliyunCredentials()))
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
	})
	if prefix != "" {
		prefix += "/"
	}
	return &ObjectStore{client: client, bucket: bucket, prefix: prefix}, nil
}

// aliyunCredentials adapts Alibaba Cloud credentials to the AWS SDK: the
// invocation's role credentials on Function Compute, else credentials-go's
// default chain (not goroutine-safe: guarded).
func aliyunCredentials() aws.CredentialsProvider {
	var mu sync.Mutex
	var chain providers.CredentialsProvider
	return aws.CredentialsProviderFunc(func(ctx context.Context) (aws.Credentials, error) {
		if fcc, ok := fccontext.FromContext(ctx); ok && fcc.Credentials.AccessKeyId != "" {
			c := fcc.Credentials
			return aws.Credentials{AccessKeyID: c.AccessKeyId, SecretAccessKey: c.AccessKeySecret, SessionToken: c.SecurityToken}, nil
		}
		mu.Lock()
		defer mu.Unlock()
		if chain == nil {
			chain = providers.NewDefaultCredentialsProvider()
		}
		c, err := chain.GetCredentials()
		if err != nil {
			return aws.Credentials{}, err
		}
		return aws.Credentials{AccessKeyID: c.AccessKeyId, SecretAccessKey: c.AccessKeySecret, SessionToken: c.SecurityToken,
			CanExpire: c.SecurityToken != "", Expires: time.Now().Add(time.Minute)}, nil
	})
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
			if cur, err = decode(b); err != nil {
				return err
			}
			etag = aws.ToString(out.ETag)
		case notFound(err):
		default:
			return fmt.Errorf("group store: %w", err)
		}
		next, err := fn(cur)
		if err != nil {
			return err
		}
		if next == nil {
			if cur == nil {
				return nil
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
		time.Sleep(time.Duration(attempt+1) * 10 * time.Millisecond)
	}
	return fmt.Errorf("group store: %w after 20 attempts", ErrConflict)
}

// List implements Store.
func (s *ObjectStore) List(ctx context.Context, after string, limit int) ([]*Group, string, error) {
	in := &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: aws.String(s.prefix), MaxKeys: aws.Int32(int32(limit))}
	if after != "" {
		in.StartAfter = aws.String(s.key(after))
	}
	out, err := s.client.ListObjectsV2(ctx, in)
	if err != nil {
		return nil, "", fmt.Errorf("group store: %w", err)
	}
	// Read the page's objects eight at a time, keeping their order.
	var keys []string
	last := ""
	for _, obj := range out.Contents {
		k := aws.ToString(obj.Key)
		id, ok := strings.CutSuffix(strings.TrimPrefix(k, s.prefix), ".json")
		if !ok {
			continue
		}
		last = id
		keys = append(keys, k)
	}
	found := make([]*Group, len(keys))
	errs := make([]error, len(keys))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int, k string) {
			defer func() { <-sem; wg.Done() }()
			got, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(k)})
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
			found[i], errs[i] = decode(b)
		}(i, k)
	}
	wg.Wait()
	var groups []*Group
	for i := range keys {
		if errs[i] != nil {
			return nil, "", errs[i]
		}
		if found[i] != nil {
			groups = append(groups, found[i])
		}
	}
	next := ""
	if aws.ToBool(out.IsTruncated) {
		next = last
	}
	return groups, next, nil
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
