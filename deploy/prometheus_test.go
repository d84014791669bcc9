// Package deploy holds the tests of the production deployment's files:
// the alert rules and their unit tests, the Alertmanager configuration,
// the Grafana dashboards and the compose files.
package deploy

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestAlertRules runs scripts/check-deploy.sh: promtool checks and
// unit-tests every alerts*.yml, and amtool the Alertmanager routes. The
// script installs the tools as root when they are missing (CI); -short
// runs it only when they are already here, so the fast path installs
// nothing.
func TestAlertRules(t *testing.T) {
	if testing.Short() {
		for _, tool := range []string{"promtool", "amtool"} {
			if _, err := exec.LookPath(tool); err != nil {
				t.Skipf("-short and %s is not installed", tool)
			}
		}
	}
	script, err := filepath.Abs(filepath.Join("..", "scripts", "check-deploy.sh"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", script)
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 77 {
		t.Skipf("%s", out)
	}
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	t.Logf("%s", out)
}
