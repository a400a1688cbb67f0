// Command server runs the promrelay relay as a plain HTTP server: for local
// development (make run), self-hosting, and Function Compute's custom
// runtime. Settings come from PROMRELAY_* environment variables, overridden
// by the flags of the same meaning (-h lists them).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/promrelay/promrelay/shared/app"
	"github.com/promrelay/promrelay/shared/query/enforce"
)

func main() {
	env := app.OS()
	env.Enforcer = enforce.Enforcer{} // the server serves reads and writes
	if err := app.RunServer(os.Args[1:], env); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "promrelay:", err)
		os.Exit(1)
	}
}
