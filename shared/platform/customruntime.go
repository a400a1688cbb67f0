package platform

import (
	"net/http"

	"github.com/aliyun/fc-runtime-go-sdk/fccontext"

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

// Headers with the invocation's role credentials in the custom runtime.
const (
	FCAccessKeyIDHeader     = "x-fc-access-key-id"
	FCAccessKeySecretHeader = "x-fc-access-key-secret"
	FCSecurityTokenHeader   = "x-fc-security-token"
)

// CustomRuntime wraps the relay handler for Function Compute's custom
// runtime: POST /invoke runs the scheduled job (answering 200 or 500), and
// every other request is served by h with the x-fc-request-id in its log
// line. With trustFC (the server runs in Function Compute's custom
// runtime), the invocation's role credentials in the x-fc-access-key-*
// headers are put in the request's context as the go1 runtime does
// (fccontext), where the aliyun signer finds them; elsewhere those headers
// come from the client and are ignored.
func (a *Adapter) CustomRuntime(h http.Handler, trustFC bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		id := r.Header.Get(FCRequestIDHeader)
		if id != "" {
			ctx = relay.WithRequestID(ctx, id)
		}
		if trustFC && r.Header.Get(FCAccessKeyIDHeader) != "" {
			ctx = fccontext.NewContext(ctx, &fccontext.FcContext{RequestID: id, Credentials: fccontext.Credentials{
				AccessKeyId:     r.Header.Get(FCAccessKeyIDHeader),
				AccessKeySecret: r.Header.Get(FCAccessKeySecretHeader),
				SecurityToken:   r.Header.Get(FCSecurityTokenHeader),
			}})
		}
		for _, hdr := range []string{FCAccessKeyIDHeader, FCAccessKeySecretHeader, FCSecurityTokenHeader} {
			r.Header.Del(hdr)
		}
		r = r.WithContext(ctx)
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
