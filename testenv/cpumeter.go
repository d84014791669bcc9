package testenv

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// CPUMeter measures the CPU time this process and the benchmark's
// PostgreSQL cluster (the postmaster and all its children, including
// reaped ones) spent between start and stop, read from /proc (Linux only;
// elsewhere it reports zeros). The machine is shared, so CPU per transfer
// is a steadier figure than transfers/s.
type CPUMeter struct {
	postmaster   int
	goCPU, pgCPU time.Duration
}

// StartCPUMeter starts measuring; pool is a connection to the cluster.
func StartCPUMeter(pool *pgxpool.Pool) *CPUMeter {
	m := &CPUMeter{}
	var backend int
	if err := pool.QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&backend); err == nil {
		m.postmaster = procPPid(backend)
	}
	m.goCPU, m.pgCPU = selfCPU(), clusterCPU(m.postmaster)
	return m
}

// Report adds go_cpu_us/op and pg_cpu_us/op to b.
func (m *CPUMeter) Report(b *testing.B, ops int) {
	goCPU, pgCPU := selfCPU()-m.goCPU, clusterCPU(m.postmaster)-m.pgCPU
	if ops > 0 {
		b.ReportMetric(float64(goCPU.Microseconds())/float64(ops), "go_cpu_us/op")
		b.ReportMetric(float64(pgCPU.Microseconds())/float64(ops), "pg_cpu_us/op")
	}
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procStat returns the fields of /proc/pid/stat after the command name.
func procStat(pid int) []string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

func procPPid(pid int) int {
	f := procStat(pid)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// clusterCPU sums utime+stime of the postmaster, its live children and its
// reaped children (cutime+cstime).
func clusterCPU(postmaster int) time.Duration {
	if postmaster == 0 {
		return 0
	}
	const tick = 10 * time.Millisecond // USER_HZ = 100 on Linux
	ticks := func(f []string, from, to int) (n int64) {
		for i := from; i <= to && i < len(f); i++ {
			v, _ := strconv.ParseInt(f[i], 10, 64)
			n += v
		}
		return n
	}
	// Fields after ")": state=0 ppid=1 … utime=11 stime=12 cutime=13 cstime=14.
	total := ticks(procStat(postmaster), 11, 14)
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if f := procStat(pid); len(f) > 12 && f[1] == strconv.Itoa(postmaster) {
			total += ticks(f, 11, 12)
		}
	}
	return time.Duration(total) * tick
}
