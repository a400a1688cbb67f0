package requestid_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/promrelay/promrelay/shared/requestid"
)

func TestLogLinesCarryTheRequestID(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(requestid.NewLogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "x")
	ctx := requestid.With(context.Background(), "abc123")
	logger.InfoContext(ctx, "with id")
	logger.Info("without id")
	dec := json.NewDecoder(&buf)
	for i, want := range []string{"abc123", ""} {
		var line map[string]any
		if err := dec.Decode(&line); err != nil {
			t.Fatal(err)
		}
		got, _ := line[requestid.LogAttr].(string)
		if got != want || line["component"] != "x" {
			t.Errorf("line %d: %v, want request_id %q and the logger's attributes", i, line, want)
		}
	}
	if a, b := requestid.New(), requestid.New(); len(a) != 16 || a == b {
		t.Errorf("New() = %q, %q: want 16 hex digits, distinct", a, b)
	}
	if requestid.From(context.Background()) != "" {
		t.Error("From on a bare context is not empty")
	}
}
