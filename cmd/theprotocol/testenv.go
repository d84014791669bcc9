package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/theprotocol-dev/theprotocol/devstack"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

// runTestenv starts the shared test services once — a throwaway Postgres
// cluster, an in-memory headless Temporal dev server and an in-memory
// embedded Kafka broker — runs the command after `--` with their addresses
// in THEPROTOCOL_TEST_* variables, stops them and exits with the command's
// status. `make test` runs `go test` through it so every test package
// shares one set of services instead of starting its own.
func runTestenv(ctx context.Context, args []string) error {
	sep := -1
	for i, a := range args {
		if a == "--" {
			sep = i
			break
		}
	}
	if sep < 0 || sep == len(args)-1 {
		return fmt.Errorf("usage: theprotocol testenv [flags] -- command [args...]")
	}
	cfg, _, err := parseFlags("testenv", args[:sep], nil)
	if err != nil {
		return err
	}
	log := newLogger(cfg)
	cmdArgs := args[sep+1:]
	start := time.Now()

	type result struct {
		val  string
		stop func()
		err  error
	}
	pgCh, tmpCh := make(chan result, 1), make(chan result, 1)
	go func() {
		pg, stop, err := testenv.StartPostgres(ctx, log)
		if err != nil {
			pgCh <- result{err: err}
			return
		}
		pgCh <- result{val: pg.AdminURL(), stop: stop}
	}()
	go func() {
		addr, stop, err := testenv.StartTemporal(ctx, log)
		tmpCh <- result{addr, stop, err}
	}()
	pg, tmp := <-pgCh, <-tmpCh
	for _, r := range []result{pg, tmp} {
		if r.stop != nil {
			defer r.stop()
		}
	}
	if pg.err != nil {
		return fmt.Errorf("postgres: %w", pg.err)
	}
	if tmp.err != nil {
		return fmt.Errorf("temporal: %w", tmp.err)
	}
	k, err := devstack.StartKafka(devstack.KafkaOptions{Log: log})
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	defer k.Stop()
	log.Info("test services ready", "startup", time.Since(start).Round(time.Millisecond),
		"postgres", pg.val, "temporal", tmp.val, "kafka", k.Addr())

	cmd := exec.CommandContext(ctx, cmdArgs[0], cmdArgs[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(),
		testenv.EnvPostgresURL+"="+pg.val,
		testenv.EnvTemporalAddr+"="+tmp.val,
		testenv.EnvKafkaBrokers+"="+strings.Join([]string{k.Addr()}, ","),
	)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exitError(exit.ExitCode())
	}
	return err
}
