package apiclient_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The committed client is what the pinned generator makes of the committed
// document: it is regenerated into a temporary file (no git needed) with
// the exact command of `make generate`, and compared byte for byte.
func TestGeneratedClientIsCurrent(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to run the pinned generator: %v", err)
	}
	out := filepath.Join(t.TempDir(), "client.gen.go")
	cmd := exec.Command(goBin, "tool", "-modfile=tools/oapi-codegen/go.mod", "oapi-codegen",
		"-config", "sdk/apiclient/oapi-codegen.yaml", "-o", out, "api/openapi/openapi.json")
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("oapi-codegen: %v\n%s", err, msg)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("client.gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("sdk/apiclient/client.gen.go is stale (api/openapi/openapi.json or the generator's configuration changed): run 'make generate' and commit")
	}
}
