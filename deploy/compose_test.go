package deploy

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/require"
)

// publicPorts are the published ports allowed on another address than
// 127.0.0.1, as service/target: each must be explained in README.md.
// None yet: every entry point sits behind a reverse proxy on the host.
var publicPorts = map[string]bool{}

// nodeImage is the image the repository's Dockerfile builds.
const nodeImage = "ghcr.io/theprotocol-dev/theprotocol"

// composeSets are the file sets an operator runs.
var composeSets = [][]string{
	{"compose.yaml"},
	{"compose.yaml", "compose.beta.yaml"},
}

func loadCompose(t *testing.T, files []string) *types.Project {
	t.Helper()
	wd, err := os.Getwd()
	require.NoError(t, err)
	opts, err := cli.NewProjectOptions(files,
		cli.WithWorkingDirectory(wd), cli.WithResolvedPaths(true), cli.WithEnv([]string{}),
		cli.WithConsistency(true), cli.WithNormalization(true))
	require.NoError(t, err)
	p, err := opts.LoadProject(context.Background())
	require.NoError(t, err, "%v", files)
	return p
}

// exactVersion is a tag naming one release (15.18, v24.2.7, 1.13.3), not
// a moving one (latest, 15, nonroot).
var exactVersion = regexp.MustCompile(`^v?[0-9]+(\.[0-9]+)+([.+-][0-9A-Za-z.+-]+)?$`)

func pinned(image string) bool {
	if _, digest, ok := strings.Cut(image, "@sha256:"); ok {
		return len(digest) == 64
	}
	i := strings.LastIndex(image, ":")
	if i < 0 || strings.Contains(image[i:], "/") {
		return false // no tag: latest
	}
	return exactVersion.MatchString(image[i+1:])
}

func TestPinned(t *testing.T) {
	for image, want := range map[string]bool{
		"postgres:15.18": true, "redpandadata/redpanda:v24.2.7": true, "ghcr.io/spiffe/spire-agent:1.13.3": true,
		"golang:1.26.8-bookworm": true, "localhost:5000/x:1.2.3": true,
		"postgres@sha256:" + strings.Repeat("a", 64): true,
		"postgres": false, "postgres:latest": false, "postgres:15": false, "localhost:5000/x": false,
		"gcr.io/distroless/static-debian12:nonroot": false, "postgres@sha256:abc": false,
	} {
		require.Equal(t, want, pinned(image), image)
	}
}

// documentedSecrets are the secret files secrets/README.md describes; they
// are written on the host (scripts/deploy-secrets.sh), never committed.
func documentedSecrets(t *testing.T) map[string]bool {
	raw, err := os.ReadFile(filepath.Join("secrets", "README.md"))
	require.NoError(t, err)
	out := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\|").FindAllStringSubmatch(string(raw), -1) {
		out[m[1]] = true
	}
	return out
}

// TestComposeFiles loads each compose file set with the compose
// specification's loader and checks the rules the files promise: images
// pinned, files present, secrets as files, loopback-only ports, the nodes
// unprivileged and read-only, every registry of the topology served once.
func TestComposeFiles(t *testing.T) {
	wd, err := os.Getwd()
	require.NoError(t, err)
	secretDocs := documentedSecrets(t)
	topo := topologyRegistries(t)
	secretish := regexp.MustCompile(`(?i)password|passwd|pwd|secret|api_key|token`)
	for _, files := range composeSets {
		p := loadCompose(t, files)
		name := strings.Join(files, "+")
		served := map[string]string{}
		for _, svc := range p.Services {
			where := name + ": service " + svc.Name
			require.True(t, pinned(svc.Image), "%s: image %q is not pinned to an exact version or digest", where, svc.Image)
			for _, v := range svc.Volumes {
				if v.Type != types.VolumeTypeBind {
					continue
				}
				_, err := os.Stat(v.Source)
				require.NoError(t, err, "%s mounts %s, which is not in the repository", where, v.Source)
				require.True(t, strings.HasPrefix(v.Source, wd+string(filepath.Separator)), "%s mounts %s from outside deploy/", where, v.Source)
			}
			for _, port := range svc.Ports {
				if port.Published == "" {
					continue
				}
				key := svc.Name + "/" + port.Published
				require.True(t, port.HostIP == "127.0.0.1" || publicPorts[key],
					"%s publishes %s on %q: bind it to 127.0.0.1 or document it in publicPorts and README.md", where, port.Published, port.HostIP)
			}
			for k := range svc.Environment {
				// The value is not printed: it may be the secret.
				if secretish.MatchString(k) && !strings.HasSuffix(k, "FILE") {
					require.Failf(t, "secret in a variable", "%s sets %s: pass it as a file (a compose secret)", where, k)
				}
			}
			if !strings.HasPrefix(svc.Image, nodeImage+":") {
				continue
			}
			require.NotNil(t, svc.Build, "%s: the node image is built from the repository", where)
			_, err := os.Stat(filepath.Join(svc.Build.Context, svc.Build.Dockerfile))
			require.NoError(t, err, where)
			require.True(t, svc.ReadOnly, "%s: a node's root file system is read-only", where)
			require.NotEmpty(t, svc.User, where)
			require.NotEqual(t, "0", strings.Split(svc.User, ":")[0], "%s runs as root", where)
			cmd := []string(svc.Command)
			require.NotEmpty(t, cmd, where)
			switch cmd[0] {
			case "migrate":
				require.Equal(t, "no", svc.Restart, "%s: migrations run once", where)
			case "serve":
				i := slices.Index(cmd, "-registries")
				require.True(t, i > 0 && i+1 < len(cmd), "%s: serve names the registries it hosts", where)
				regs := strings.Split(cmd[i+1], ",")
				byName, _ := svc.Environment["THEPROTOCOL_PEERS_BY_NAME"]
				if byName != nil && *byName == "true" {
					require.Equal(t, []string{svc.Name}, regs, "%s: with THEPROTOCOL_PEERS_BY_NAME its peers reach it by its service name, so it serves the registry of that name alone", where)
				}
				for _, r := range regs {
					require.Contains(t, topo, r, "%s serves %s, which topology.json does not name", where, r)
					require.NotContains(t, served, r, "%s and %s both serve %s", where, served[r], r)
					served[r] = svc.Name
				}
				require.Contains(t, svc.Environment, "SPIFFE_ENDPOINT_SOCKET", where)
				require.True(t, slices.ContainsFunc(svc.Volumes, func(v types.ServiceVolumeConfig) bool {
					return v.Target == "/run/spire/sockets" && v.ReadOnly
				}), "%s mounts the SPIRE agent's socket read-only", where)
				require.Contains(t, svc.DependsOn, "migrate", "%s starts after the migrations", where)
				require.Equal(t, types.ServiceConditionCompletedSuccessfully, svc.DependsOn["migrate"].Condition, where)
			default:
				require.Failf(t, "unknown node command", "%s runs %v", where, cmd)
			}
			require.Len(t, svc.Ports, min(1, len(svc.Ports)), "%s publishes its API port only", where)
		}
		for _, s := range p.Secrets {
			rel, err := filepath.Rel(wd, s.File)
			require.NoError(t, err)
			if _, err := os.Stat(s.File); err == nil {
				continue
			}
			require.True(t, filepath.Dir(rel) == "secrets" && secretDocs[filepath.Base(rel)],
				"%s: secret %s reads %s, which is neither present nor a secret documented in secrets/README.md", name, s.Name, rel)
		}
		if len(files) == len(composeSets[len(composeSets)-1]) {
			for r := range topo {
				require.Contains(t, served, r, "%s: no service serves registry %s", name, r)
			}
		}
	}
}

func topologyRegistries(t *testing.T) map[string]bool {
	raw, err := os.ReadFile("topology.json")
	require.NoError(t, err)
	var topo struct {
		Frames []struct {
			Registries []struct {
				ID string `json:"id"`
			} `json:"registries"`
		} `json:"frames"`
	}
	require.NoError(t, json.Unmarshal(raw, &topo))
	out := map[string]bool{}
	for _, f := range topo.Frames {
		for _, r := range f.Registries {
			out[r.ID] = true
		}
	}
	return out
}

// TestDockerfile checks the image's promises that hold without Docker —
// pinned base images, a scratch run stage as an unprivileged user with an
// exec-form entrypoint — and runs its build command: the static binary
// must build (CGO off) from this tree.
func TestDockerfile(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "Dockerfile"))
	require.NoError(t, err)
	defer f.Close()
	var (
		stages []string
		user   string
		entry  string
		build  string
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		kw, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(kw) {
		case "FROM":
			image := strings.Fields(rest)[0]
			require.True(t, image == "scratch" || pinned(image), "FROM %s is not pinned", image)
			stages = append(stages, image)
			user, entry = "", ""
		case "USER":
			user = rest
		case "ENTRYPOINT":
			entry = rest
		case "RUN":
			if strings.Contains(rest, "go build") {
				build = rest
			}
		}
	}
	require.NoError(t, sc.Err())
	require.GreaterOrEqual(t, len(stages), 2, "a build stage and a run stage")
	require.Equal(t, "scratch", stages[len(stages)-1], "the run stage holds the binary alone")
	require.NotEmpty(t, user, "the run stage sets USER")
	require.NotContains(t, []string{"0", "root"}, strings.Split(user, ":")[0])
	require.True(t, strings.HasPrefix(entry, "["), "ENTRYPOINT in exec form: there is no shell at run time")
	require.Contains(t, build, "CGO_ENABLED=0")

	if testing.Short() {
		t.Skip("-short: the build command is not run")
	}
	if os.Getenv("THEPROTOCOL_TEST_STATIC_BUILD") == "" {
		// A static build shares no compiled package with the test builds
		// (CGO off, -trimpath): minutes of CPU on a cold cache. By default
		// check only that every package of the binary resolves with CGO
		// off; make check-image runs the build itself.
		cmd := exec.Command("go", "list", "-deps", "-e", "-tags", "timetzdata",
			"-f", "{{with .Error}}{{.}}\n{{end}}{{range .DepsErrors}}{{.}}\n{{end}}", "./cmd/theprotocol")
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		msg, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", msg)
		require.Empty(t, strings.TrimSpace(string(msg)), "packages of the binary that do not build with CGO off")
		return
	}
	// The Dockerfile's build, writing into a temporary directory.
	out := filepath.Join(t.TempDir(), "theprotocol")
	cmdline := strings.ReplaceAll(build, "-o /out/theprotocol", "-o "+out)
	cmdline = strings.ReplaceAll(cmdline, "${VERSION}", "test")
	require.Contains(t, cmdline, out)
	cmd := exec.Command("sh", "-c", cmdline)
	cmd.Dir = ".."
	cmd.Env = os.Environ()
	msg, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s\n%s", cmdline, msg)
	ver, err := exec.Command(out, "version").Output()
	require.NoError(t, err)
	require.Equal(t, "test", strings.TrimSpace(string(ver)))
}
