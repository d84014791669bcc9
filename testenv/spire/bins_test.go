package spire

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func writeExec(t *testing.T, dir, name string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755))
}

func TestLocateHonoursEnvDirOnly(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "bin"), 0o755))
	writeExec(t, filepath.Join(root, "bin"), "spire-server")
	writeExec(t, filepath.Join(root, "bin"), "spire-agent")

	// Unset variable: the module's bin is used.
	s, a, err := locate("", root)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(root, "bin", "spire-server"), s)
	require.Equal(t, filepath.Join(root, "bin", "spire-agent"), a)

	// Variable set to an empty directory: an error, not the module's copy.
	empty := t.TempDir()
	_, _, err = locate(empty, root)
	require.Error(t, err)
	require.Contains(t, err.Error(), empty)

	// Nothing anywhere, variable unset: an error the caller turns into a skip.
	_, _, err = locate("", t.TempDir())
	require.Error(t, err)
}

// TestBinsFailsWhenEnvDirSetButEmpty runs Bins in a child test process with
// the variable pointing at an empty directory: the child must fail, not skip.
func TestBinsFailsWhenEnvDirSetButEmpty(t *testing.T) {
	if os.Getenv("SPIRE_BINS_CHILD") == "1" {
		Bins(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestBinsFailsWhenEnvDirSetButEmpty$", "-test.v")
	cmd.Env = append(os.Environ(), "SPIRE_BINS_CHILD=1", EnvBinDir+"="+t.TempDir())
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "child must fail:\n%s", out)
	require.True(t, strings.Contains(string(out), "--- FAIL"), "child output:\n%s", out)
	require.False(t, strings.Contains(string(out), "--- SKIP"), "child output:\n%s", out)
	require.Contains(t, string(out), "SPIRE binaries required")
}
