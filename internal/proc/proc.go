// Package proc starts and measures the processes of promrelay's load and
// benchmark programs (cmd/promrelay-load, bench/process): a child that is
// killed with its parent, readiness by HTTP, and its CPU time and memory
// from Linux's /proc.
package proc

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// userHZ is the unit of /proc/<pid>/stat's CPU times (USER_HZ, 100 on
// every Linux this runs on).
const userHZ = 100

// Process is a started child process, serving HTTP at URL.
type Process struct {
	Name string
	URL  string // http://host:port
	Cmd  *exec.Cmd
}

// Start runs bin with args and env (the whole environment; nil inherits
// this process's) under name, its output on this process's stderr, killed
// when this process dies, and waits at most 30 s until URL+ready answers
// 200. The error names what did not become ready.
func Start(name, bin, url, ready string, env []string, args ...string) (*Process, error) {
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // no orphan when the parent is killed
	cmd.Env = env
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{Name: name, URL: url, Cmd: cmd}
	client := &http.Client{Timeout: 2 * time.Second}
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if resp, err := client.Get(url + ready); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
	}
	p.Stop()
	return nil, fmt.Errorf("%s did not become ready on %s", name, url+ready)
}

// Stop kills the process and waits for it; a nil or unstarted one is a
// no-op.
func (p *Process) Stop() {
	if p == nil || p.Cmd.Process == nil {
		return
	}
	_ = p.Cmd.Process.Kill()
	_ = p.Cmd.Wait()
}

// CPU is the process's CPU time so far, user plus system
// (/proc/<pid>/stat fields 14 and 15), at USER_HZ resolution (10 ms).
func (p *Process) CPU() (time.Duration, error) { return CPUOf(p.Cmd.Process.Pid) }

// CPUOf is CPU for any pid.
func CPUOf(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: fields count from its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	st, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * (time.Second / userHZ), nil
}

// Status reads a kB field of /proc/<pid>/status (VmHWM, VmRSS), in bytes;
// 0 when it cannot.
func (p *Process) Status(field string) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Cmd.Process.Pid))
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}

// FreeAddr returns a free loopback host:port.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
