package platform

import (
	"net/http"

	"github.com/promrelay/promrelay/shared/relay"
)

// Function Compute custom-runtime contract
// (https://www.alibabacloud.com/help/en/functioncompute/fc-3-0/user-guide/custom-runtime-overview):
// the platform forwards HTTP-trigger requests to the server as they are,
// with the request id in a header, and delivers event invocations (timer
// triggers among them) as POST /invoke.
const (
	// FCRequestIDHeader carries the invocation's request id.
	FCRequestIDHeader = "x-fc-request-id"
	// InvokePath is the custom runtime's event-invocation route.
	InvokePath = "/invoke"
)

// CustomRuntime wraps the relay handler for Function Compute's custom
// runtime: POST /invoke runs the scheduled job (answering 200 or 500), and
// every other request is served by h with the x-fc-request-id in its log
// line.
func (a *Adapter) CustomRuntime(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if id := r.Header.Get(FCRequestIDHeader); id != "" {
			ctx = relay.WithRequestID(ctx, id)
			r = r.WithContext(ctx)
		}
		if r.URL.Path == InvokePath && r.Method == http.MethodPost {
			if err := a.runScheduled(ctx, "fc custom runtime invoke"); err != nil {
				http.Error(w, "scheduled job failed: "+err.Error(), http.StatusInternalServerError)
				return
			}
			w.WriteHeader(http.StatusOK)
			return
		}
		h.ServeHTTP(w, r)
	})
}
