package auth_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/promrelay/promrelay/shared/auth"
)

// nullTransport answers 204 without any I/O, so the benchmark measures the
// signing alone.
type nullTransport struct{}

func (nullTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	io.Copy(io.Discard, r.Body)
	return &http.Response{StatusCode: 204, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
}

// BenchmarkSign measures the per-request cost of each upstream signer on a
// 64 KiB body (a typical compressed remote-write request), credentials
// cached.
func BenchmarkSign(b *testing.B) {
	body := bytes.Repeat([]byte{0x5a}, 64<<10)
	b.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIbench")
	b.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "benchSecret")
	b.Setenv("ALIBABA_CLOUD_SECURITY_TOKEN", "benchToken")
	provider, err := auth.NewAliyunProvider(auth.AliyunProviderOptions{Window: 5 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	aliyun, err := auth.NewAliyun(auth.AliyunOptions{Provider: provider, Form: auth.AliyunBasic, MinForcedRefresh: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	sigv4, err := auth.NewSigV4(context.Background(), "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write",
		auth.SigV4Options{Window: 5 * time.Minute, MinForcedRefresh: 10 * time.Second, ConfigOptions: []func(*config.LoadOptions) error{
			config.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "secret", SessionToken: "token", CanExpire: false}, nil
			})),
		}})
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		signer auth.Signer
	}{
		{"none", &auth.Static{}},
		{"basic", &auth.Static{Username: "u", Password: "p"}},
		{"aliyun", aliyun},
		{"sigv4", sigv4},
	} {
		b.Run(tc.name, func(b *testing.B) {
			tr, err := auth.NewTransport("https://upstream.example/api/v1/write", tc.signer, nullTransport{})
			if err != nil {
				b.Fatal(err)
			}
			req, _ := http.NewRequest(http.MethodPost, "https://upstream.example/api/v1/write", &bytesBody{body})
			req.Header.Set("Content-Encoding", "snappy")
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				resp, err := tr.RoundTrip(req)
				if err != nil || resp.StatusCode != 204 {
					b.Fatal(err)
				}
			}
		})
	}
}

// bytesBody is a body like the upstream client's: it hands over its bytes.
type bytesBody struct{ b []byte }

func (r *bytesBody) Read(p []byte) (int, error) { return 0, io.EOF }
func (r *bytesBody) Close() error               { return nil }
func (r *bytesBody) Bytes() []byte              { return r.b }
