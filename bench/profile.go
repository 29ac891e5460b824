package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// profile is a CPU profile of the proxy taken during one phase through its
// listen.pprof listener: where the proxy's own time goes when a target is
// missed.
type profile struct {
	name, path string
	done       chan error
	args       []string // extra go tool pprof arguments for top
}

// startProfile begins a CPU profile of p lasting d (whole seconds, at
// least one), written to dir/profile-<name>.pb.gz.
func startProfile(ctx context.Context, p *proxyProcess, dir, name string, d time.Duration) *profile {
	pr := &profile{name: name, path: filepath.Join(dir, "profile-"+name+".pb.gz"), done: make(chan error, 1)}
	secs := max(1, int(d/time.Second))
	go func() {
		pr.done <- func() error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", p.pprofAddr, secs), nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("pprof answered %s", resp.Status)
			}
			f, err := os.Create(pr.path)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, resp.Body); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		}()
	}()
	return pr
}

// top waits for the profile and returns pprof's top entries by flat time.
func (pr *profile) top(ctx context.Context, n int) string {
	if err := <-pr.done; err != nil {
		return fmt.Sprintf("no profile of %s: %v\n", pr.name, err)
	}
	args := append([]string{"tool", "pprof", "-top", fmt.Sprintf("-nodecount=%d", n)}, pr.args...)
	out, err := exec.CommandContext(ctx, "go", append(args, pr.path)...).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("go tool pprof %s: %v\n%s", pr.path, err, out)
	}
	return string(out)
}

// heapProfile saves the proxy's heap profile (live objects, after a GC)
// to dir/profile-<name>.pb.gz: what idle sessions hold. The GC it forces
// changes the RSS, so it is taken after the RSS is read.
func heapProfile(ctx context.Context, p *proxyProcess, dir, name string) *profile {
	pr := &profile{name: name, path: filepath.Join(dir, "profile-"+name+".pb.gz"), done: make(chan error, 1), args: []string{"-sample_index=inuse_space"}}
	pr.done <- func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/heap?gc=1", p.pprofAddr), nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("pprof answered %s", resp.Status)
		}
		f, err := os.Create(pr.path)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, resp.Body); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}()
	return pr
}
