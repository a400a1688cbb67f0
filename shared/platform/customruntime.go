package platform

import (
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"

	"github.com/promrelay/promrelay/shared/requestid"
)

// Function Compute custom-runtime contract
// (https://www.alibabacloud.com/help/en/functioncompute/fc-3-0/user-guide/custom-runtime-overview):
// the platform forwards HTTP-trigger requests to the server as they are,
// with the request id in a header, and delivers event invocations (timer
// triggers among them) as POST /invoke with the event as the body.
const (
	// FCRequestIDHeader carries the invocation's request id.
	FCRequestIDHeader = "x-fc-request-id"
	// InvokePath is the custom runtime's event-invocation route.
	InvokePath = "/invoke"
)

// Headers in which Function Compute may pass the invocation's role
// credentials to a custom runtime. Function Compute's documentation does
// not promise that an HTTP trigger drops them when a caller sends them, so
// promrelay never reads them: the custom runtime takes the role's
// credentials from the ALIBABA_CLOUD_ACCESS_KEY_ID,
// ALIBABA_CLOUD_ACCESS_KEY_SECRET and ALIBABA_CLOUD_SECURITY_TOKEN
// environment variables that Function Compute 3.0 sets, and these headers
// are removed before the relay sees the request.
var fcCredentialHeaders = []string{"x-fc-access-key-id", "x-fc-access-key-secret", "x-fc-security-token"}

// maxEventBytes bounds an /invoke body: a timer event is a few hundred
// bytes.
const maxEventBytes = 64 << 10

// timerEvent is the part of Function Compute's timer event that /invoke
// checks: the trigger's payload, which s.custom-runtime.yaml sets to the
// invoke secret.
type timerEvent struct {
	Payload string `json:"payload"`
}

// CustomRuntime wraps the relay handler for Function Compute's custom
// runtime. POST /invoke runs the scheduled job only when the event's
// payload equals secret (compared in constant time): 200 when it ran, 403
// for any other event, 500 "scheduled job failed" (the reason is logged,
// not answered). Every other request is served by h with the
// x-fc-request-id as its request id, after the x-fc-access-key-* headers
// are removed. Outside the custom runtime, do not use it: /invoke is then
// not a route at all.
func (a *Adapter) CustomRuntime(h http.Handler, secret string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if id := r.Header.Get(FCRequestIDHeader); id != "" {
			ctx = requestid.With(ctx, id)
		}
		for _, hdr := range fcCredentialHeaders {
			r.Header.Del(hdr)
		}
		r = r.WithContext(ctx)
		if r.URL.Path != InvokePath {
			a.selfWriteBeside(ctx)
			h.ServeHTTP(w, r)
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxEventBytes))
		var ev timerEvent
		if err != nil || json.Unmarshal(body, &ev) != nil || secret == "" ||
			subtle.ConstantTimeCompare([]byte(ev.Payload), []byte(secret)) != 1 {
			a.logger().WarnContext(ctx, "invoke refused: the event does not carry PROMRELAY_INVOKE_SECRET", "remote", r.RemoteAddr)
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		if err := a.runScheduled(ctx, "fc custom runtime invoke"); err != nil {
			http.Error(w, "scheduled job failed", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}
