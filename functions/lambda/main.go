// Command lambda is promrelay for AWS Lambda's provided.al2023 runtime
// (built as bootstrap with -tags lambda.norpc). Function URL, API Gateway
// HTTP API v2 and ALB events are relayed; EventBridge schedules run the
// scheduled job. Settings come from PROMRELAY_* environment variables
// (template.yaml sets them).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/promrelay/promrelay/shared/app"
)

func main() {
	a, err := app.FromEnv(app.Lambda, app.OS())
	if err != nil {
		app.Fatal(err)
	}
	lambda.Start(a.Adapter.Lambda)
}
