package platform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"

	"github.com/aliyun/fc-runtime-go-sdk/events"
	"github.com/aliyun/fc-runtime-go-sdk/fccontext"

	"github.com/promrelay/promrelay/shared/requestid"
)

// fcProbe holds the fields that tell Function Compute's event kinds apart.
type fcProbe struct {
	RawPath        *string `json:"rawPath"`
	RequestContext struct {
		HTTP struct {
			Method string `json:"method"`
		} `json:"http"`
	} `json:"requestContext"`
	TriggerTime *string `json:"triggerTime"`
	TriggerName *string `json:"triggerName"`
}

// FC handles one Function Compute 3.0 invocation of the built-in go1 runtime
// (fc.Start): an HTTP-trigger event (events.HTTPTriggerEvent) is served by
// the handler and answered with an events.HTTPTriggerResponse; a timer event
// (events.TimerEvent) runs the scheduled job. Any other payload is an error,
// which Function Compute reports as a failed invocation.
func (a *Adapter) FC(ctx context.Context, payload json.RawMessage) (any, error) {
	var probe fcProbe
	if err := json.Unmarshal(payload, &probe); err != nil {
		return nil, fmt.Errorf("cannot decode the invocation event: %w", err)
	}
	requestID := ""
	if fcc, ok := fccontext.FromContext(ctx); ok {
		requestID = fcc.RequestID
	}
	if requestID != "" {
		// Every line the invocation logs carries it, timer runs too.
		ctx = requestid.With(ctx, requestID)
	}
	switch {
	case probe.RequestContext.HTTP.Method != "":
		var ev events.HTTPTriggerEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, fmt.Errorf("cannot decode the HTTP trigger event: %w", err)
		}
		return a.fcHTTP(ctx, &ev, requestID), nil
	case probe.TriggerTime != nil || probe.TriggerName != nil:
		name := ""
		if probe.TriggerName != nil {
			name = *probe.TriggerName
		}
		if err := a.runScheduled(ctx, "fc timer "+name); err != nil {
			return nil, err
		}
		return map[string]string{"status": "ok"}, nil
	default:
		return nil, errors.New("unrecognised invocation event: neither an HTTP trigger event nor a timer event")
	}
}

func (a *Adapter) fcHTTP(ctx context.Context, ev *events.HTTPTriggerEvent, requestID string) events.HTTPTriggerResponse {
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	e := httpEvent{
		method:    str(ev.TriggerContext.Http.Method),
		host:      str(ev.TriggerContext.DomainName),
		path:      str(ev.RawPath),
		body:      str(ev.Body),
		base64:    ev.IsBase64Encoded != nil && *ev.IsBase64Encoded,
		requestID: requestID,
	}
	if e.path == "" {
		e.path = str(ev.TriggerContext.Http.Path)
	}
	if ev.Headers != nil {
		e.header = headerFromMap(*ev.Headers)
		if h := e.header.Get("Host"); h != "" {
			e.host = h
		}
	}
	if ev.QueryParameters != nil {
		q := url.Values{}
		keys := make([]string, 0, len(*ev.QueryParameters))
		for k := range *ev.QueryParameters {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			q.Set(k, (*ev.QueryParameters)[k])
		}
		e.rawQuery = q.Encode()
	}
	if e.requestID == "" {
		e.requestID = str(ev.TriggerContext.RequestId)
	}
	resp := a.serveEvent(ctx, e)
	body, b64 := encodeBody(resp.header, resp.body)
	return events.HTTPTriggerResponse{
		StatusCode:      resp.status,
		Headers:         singleValueHeaders(resp.header),
		IsBase64Encoded: b64,
		Body:            body,
	}
}
