// Command fc is promrelay for Alibaba Cloud Function Compute 3.0's built-in
// go1 runtime (handler: main). HTTP-trigger events are relayed; timer
// events run the scheduled job. Settings come from PROMRELAY_* environment
// variables (s.yaml sets them).
package main

import (
	"github.com/aliyun/fc-runtime-go-sdk/fc"

	"github.com/promrelay/promrelay/shared/app"
)

func main() {
	a, err := app.FromEnv(app.FunctionCompute, app.OS())
	if err != nil {
		app.Fatal(err)
	}
	fc.Start(a.Adapter.FC)
}
