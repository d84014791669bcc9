// Command openapispec writes the API's OpenAPI document, built from the
// operation table in api/openapi, to a file: the committed input of the
// generated SDK client (make generate).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"

	"github.com/theprotocol-dev/theprotocol/api/openapi"
)

func main() {
	out := flag.String("o", "api/openapi/openapi.json", "file to write")
	flag.Parse()
	doc, err := openapi.Committed()
	if err == nil {
		err = writeIfChanged(*out, doc)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "openapispec:", err)
		os.Exit(1)
	}
}

// writeIfChanged leaves an identical file untouched (its mtime too), so
// make does not see a change where there is none.
func writeIfChanged(path string, doc []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, doc) {
		return nil
	}
	return os.WriteFile(path, doc, 0o644)
}
