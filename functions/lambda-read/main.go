// Command lambda-read is promrelay's read path for AWS Lambda's
// provided.al2023 runtime (built as bootstrap with -tags lambda.norpc): the
// PromQL HTTP API (and remote read, for upstreams that have it) relayed
// SigV4-signed to Amazon Managed Service for Prometheus with the reader's
// tenant enforced, behind a Function URL. It serves no write route;
// functions/lambda does, without the PromQL parser this build links.
// Settings come from PROMRELAY_* environment variables (template.yaml sets
// them).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/promrelay/promrelay/shared/app"
	"github.com/promrelay/promrelay/shared/query/enforce"
)

func main() {
	env := app.OS()
	env.Enforcer, env.ReadOnly = enforce.Enforcer{}, true
	a, err := app.FromEnv(app.Lambda, env)
	if err != nil {
		app.Fatal(err)
	}
	lambda.Start(a.Adapter.Lambda)
}
