package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's CPU times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// procSample is one reading of a process in /proc.
type procSample struct {
	at      time.Time
	rss     uint64 // resident bytes (VmRSS)
	cpu     uint64 // user+system time in clock ticks
	threads int
}

// readProc reads a process's resident memory and CPU time.
func readProc(pid int) (procSample, error) {
	s := procSample{at: time.Now()}
	dir := "/proc/" + strconv.Itoa(pid)
	if pid == 0 {
		dir = "/proc/self"
	}
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return s, err
	}
	if s.cpu, err = parseStatCPU(stat); err != nil {
		return s, fmt.Errorf("%s/stat: %w", dir, err)
	}
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return s, err
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		switch k {
		case "VmRSS":
			kb, _ := strconv.ParseUint(f[0], 10, 64)
			s.rss = kb << 10
		case "Threads":
			s.threads, _ = strconv.Atoi(f[0])
		}
	}
	return s, nil
}

// parseStatCPU returns utime+stime from /proc/PID/stat. The command name, in
// parentheses, may hold spaces and parentheses itself: fields are counted
// after its last ')'.
func parseStatCPU(stat []byte) (uint64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("no command name")
	}
	f := strings.Fields(string(stat[i+1:]))
	// After the name: state(0) ppid pgrp session tty_nr tpgid flags minflt
	// cminflt majflt cmajflt utime(11) stime(12).
	if len(f) < 13 {
		return 0, errors.New("too few fields")
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return u + s, nil
}

// cpuPercent is the CPU a process used between two samples, in percent of
// one core.
func cpuPercent(a, b procSample) float64 {
	d := b.at.Sub(a.at).Seconds()
	if d <= 0 || b.cpu < a.cpu {
		return 0
	}
	return float64(b.cpu-a.cpu) / clockTicks / d * 100
}

// findListener returns the process listening on TCP port: the socket's
// inode from /proc/net/tcp{,6}, then the process holding it among
// /proc/*/fd (root sees every process; others only their own).
func findListener(port int) (int, error) {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		raw, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, ino := range listeningInodes(raw, port) {
			inodes[ino] = true
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("no process listens on port %d (give -pid)", port)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/fd")
	for _, fd := range procs {
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(fd)))
		if err != nil || pid == os.Getpid() {
			continue
		}
		ents, err := os.ReadDir(fd)
		if err != nil {
			continue
		}
		for _, e := range ents {
			target, err := os.Readlink(filepath.Join(fd, e.Name()))
			if err != nil {
				continue
			}
			if ino, ok := strings.CutPrefix(target, "socket:["); ok && inodes[strings.TrimSuffix(ino, "]")] {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("the process listening on port %d is not visible (give -pid)", port)
}

// listeningInodes returns the inodes of the sockets listening on port in a
// /proc/net/tcp table.
func listeningInodes(table []byte, port int) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(table))
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		if len(f) < 10 || f[3] != "0A" { // TCP_LISTEN
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil && int(p) == port {
			out = append(out, f[9])
		}
	}
	return out
}
