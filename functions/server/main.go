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
)

func main() {
	if err := app.RunServer(os.Args[1:], app.OS()); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "promrelay:", err)
		os.Exit(1)
	}
}
