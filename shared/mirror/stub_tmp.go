package mirror

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// Stub of the protocol package's API until it lands (removed then).

type Querier interface {
	Query(ctx context.Context, conn Connection, endpoint string, params url.Values) (status int, body []byte, err error)
}

type AWSDetails struct {
	RoleARN, ExternalID, AccessKeyID, SecretAccessKey, SessionToken string
	TokenExpiry                                                     time.Duration
	Region, RoleSessionName                                         string
}

type Connection struct {
	URL               string
	RequestTimeout    time.Duration
	NaNInterpretation string
	AWS               *AWSDetails
}

type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return e.Reason }

type Options struct {
	Querier      Querier
	APIKey       string
	Now          func() time.Time
	MaxBodyBytes int
	Logger       *slog.Logger
}

type Handler struct{ o Options }

func New(o Options) (*Handler, error) { return &Handler{o}, nil }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {}
