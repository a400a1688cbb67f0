package platform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/promrelay/promrelay/shared/requestid"
)

// lambdaProbe holds the fields that tell Lambda's event kinds apart.
type lambdaProbe struct {
	Version        string `json:"version"`
	RawPath        string `json:"rawPath"`
	HTTPMethod     string `json:"httpMethod"`
	Source         string `json:"source"`
	DetailType     string `json:"detail-type"`
	RequestContext struct {
		HTTP struct {
			Method string `json:"method"`
		} `json:"http"`
		ELB *struct {
			TargetGroupArn string `json:"targetGroupArn"`
		} `json:"elb"`
	} `json:"requestContext"`
}

// Lambda handles one AWS Lambda invocation (lambda.Start on
// provided.al2023). It detects the event from the payload:
//
//   - Function URL and API Gateway HTTP API (payload format 2.0) events are
//     answered with an events.LambdaFunctionURLResponse, which has the
//     shape of both;
//   - ALB target-group events with an events.ALBTargetGroupResponse, with
//     multi-value headers when the request used them;
//   - EventBridge (CloudWatch Events) scheduled events run the scheduled
//     job.
//
// Binary bodies are base64-encoded both ways (IsBase64Encoded). Any other
// payload is an error, which Lambda reports as a failed invocation.
func (a *Adapter) Lambda(ctx context.Context, payload json.RawMessage) (any, error) {
	var probe lambdaProbe
	if err := json.Unmarshal(payload, &probe); err != nil {
		return nil, fmt.Errorf("cannot decode the invocation event: %w", err)
	}
	requestID := ""
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		requestID = lc.AwsRequestID
	}
	if requestID != "" {
		// Every line the invocation logs carries it, timer runs too.
		ctx = requestid.With(ctx, requestID)
	}
	switch {
	case probe.RequestContext.ELB != nil:
		var ev events.ALBTargetGroupRequest
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, fmt.Errorf("cannot decode the ALB event: %w", err)
		}
		return a.lambdaALB(ctx, &ev, requestID), nil
	case probe.RequestContext.HTTP.Method != "":
		var ev events.LambdaFunctionURLRequest
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, fmt.Errorf("cannot decode the HTTP event: %w", err)
		}
		return a.lambdaURL(ctx, &ev, requestID), nil
	case probe.Source == "aws.events" || probe.DetailType == "Scheduled Event":
		return nil, a.runScheduled(ctx, "eventbridge "+probe.DetailType)
	case probe.HTTPMethod != "":
		return nil, errors.New("API Gateway payload format 1.0 is not supported: configure the integration with payload format version 2.0")
	default:
		return nil, errors.New("unrecognised invocation event: not a Function URL, API Gateway v2, ALB or EventBridge event")
	}
}

func (a *Adapter) lambdaURL(ctx context.Context, ev *events.LambdaFunctionURLRequest, requestID string) events.LambdaFunctionURLResponse {
	h := headerFromMap(ev.Headers)
	if len(ev.Cookies) > 0 {
		h.Set("Cookie", strings.Join(ev.Cookies, "; "))
	}
	if requestID == "" {
		requestID = ev.RequestContext.RequestID
	}
	resp := a.serveEvent(ctx, httpEvent{
		method:    ev.RequestContext.HTTP.Method,
		host:      ev.RequestContext.DomainName,
		path:      ev.RawPath,
		rawQuery:  ev.RawQueryString,
		header:    h,
		body:      ev.Body,
		base64:    ev.IsBase64Encoded,
		requestID: requestID,
	})
	body, b64 := encodeBody(resp.header, resp.body)
	return events.LambdaFunctionURLResponse{
		StatusCode:      resp.status,
		Headers:         singleValueHeaders(resp.header),
		Body:            body,
		IsBase64Encoded: b64,
	}
}

func (a *Adapter) lambdaALB(ctx context.Context, ev *events.ALBTargetGroupRequest, requestID string) events.ALBTargetGroupResponse {
	multi := ev.MultiValueHeaders != nil
	var h http.Header
	var rawQuery string
	if multi {
		h = make(http.Header, len(ev.MultiValueHeaders))
		for k, vs := range ev.MultiValueHeaders {
			for _, v := range vs {
				h.Add(k, v)
			}
		}
		rawQuery = encodeQuery(ev.MultiValueQueryStringParameters)
	} else {
		h = headerFromMap(ev.Headers)
		q := make(map[string][]string, len(ev.QueryStringParameters))
		for k, v := range ev.QueryStringParameters {
			q[k] = []string{v}
		}
		rawQuery = encodeQuery(q)
	}
	resp := a.serveEvent(ctx, httpEvent{
		method:    ev.HTTPMethod,
		host:      h.Get("Host"),
		path:      ev.Path,
		rawQuery:  rawQuery,
		header:    h,
		body:      ev.Body,
		base64:    ev.IsBase64Encoded,
		requestID: requestID,
	})
	body, b64 := encodeBody(resp.header, resp.body)
	out := events.ALBTargetGroupResponse{
		StatusCode:        resp.status,
		StatusDescription: fmt.Sprintf("%d %s", resp.status, http.StatusText(resp.status)),
		Body:              body,
		IsBase64Encoded:   b64,
	}
	// ALB requires the response to use the request's header mode.
	if multi {
		out.MultiValueHeaders = make(map[string][]string, len(resp.header))
		for k, v := range resp.header {
			out.MultiValueHeaders[strings.ToLower(k)] = v
		}
	} else {
		out.Headers = singleValueHeaders(resp.header)
	}
	return out
}

// encodeQuery renders ALB query parameters, which arrive still
// percent-encoded, in a stable order.
func encodeQuery(q map[string][]string) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		for _, v := range q[k] {
			if _, err := url.QueryUnescape(v); err != nil {
				v = url.QueryEscape(v)
			}
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, "&")
}
