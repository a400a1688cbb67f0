// Command fc-read is promrelay's read path for Alibaba Cloud Function
// Compute 3.0's built-in Go runtime (binary main): the PromQL HTTP API and
// remote read, relayed signed to ARMS with the reader's tenant enforced.
// It serves no write route; functions/fc does, without the PromQL parser
// this build links. Settings come from PROMRELAY_* environment variables
// (s.yaml sets them).
package main

import (
	"github.com/aliyun/fc-runtime-go-sdk/fc"

	"github.com/promrelay/promrelay/shared/app"
	"github.com/promrelay/promrelay/shared/query/enforce"
)

func main() {
	env := app.OS()
	env.Enforcer, env.ReadOnly = enforce.Enforcer{}, true
	a, err := app.FromEnv(app.FunctionCompute, env)
	if err != nil {
		app.Fatal(err)
	}
	fc.Start(a.Adapter.FC)
}
