package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// cpuTime is the user+system CPU time a process has used so far.
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may hold spaces) in ")".
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	if len(fields) < 13 {
		return 0, errors.New("short /proc/<pid>/stat")
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// cpuSample is the CPU time used so far by each watched process, and by
// the whole machine.
type cpuSample struct {
	procs             map[int]time.Duration
	busy, idle, steal time.Duration // machine-wide, from /proc/stat
}

// sampleCPU reads the CPU times of pids (those it cannot read are left
// out) and of the machine.
func sampleCPU(pids []int) cpuSample {
	s := cpuSample{procs: map[int]time.Duration{}}
	for _, pid := range pids {
		if t, err := cpuTime(pid); err == nil {
			s.procs[pid] = t
		}
	}
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	for i, f := range fields[1:min(len(fields), 9)] {
		v, _ := strconv.ParseInt(f, 10, 64)
		d := time.Duration(v) * time.Second / clockTicks
		switch i {
		case 3, 4: // idle, iowait
			s.idle += d
		case 7:
			s.steal += d
			s.busy += d
		default:
			s.busy += d
		}
	}
	return s
}

// usage is what each process spent per operation between a and b, and
// the machine's idle and stolen shares of that time.
func usage(a, b cpuSample, ops int) (perOp map[int]time.Duration, idlePct, stealPct float64) {
	perOp = map[int]time.Duration{}
	for pid, t := range b.procs {
		if t0, ok := a.procs[pid]; ok && ops > 0 {
			perOp[pid] = (t - t0) / time.Duration(ops)
		}
	}
	if total := (b.busy - a.busy) + (b.idle - a.idle); total > 0 {
		idlePct = 100 * float64(b.idle-a.idle) / float64(total)
		stealPct = 100 * float64(b.steal-a.steal) / float64(total)
	}
	return perOp, idlePct, stealPct
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on Linux.
const clockTicks = 100
