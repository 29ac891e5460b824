package integration

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// agentFlagsParse runs `portcullis agent ARGS --help`: an unknown flag or
// a bad value fails, so a sample cannot name a flag the agent lacks.
func agentFlagsParse(t *testing.T, args []string) {
	t.Helper()
	out, err := exec.Command(portcullisBin(t), append(append([]string{"agent"}, args...), "--help")...).CombinedOutput()
	if err != nil {
		t.Fatalf("portcullis agent %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestAgentSystemdUnit(t *testing.T) {
	unit := filepath.Join("..", "packaging", "portcullis-agent.service")
	data, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	set := map[string][]string{}
	for l := range strings.Lines(string(data)) {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok && !strings.HasPrefix(k, "#") {
			set[k] = append(set[k], v)
		}
	}
	var args []string
	for _, e := range set["Environment"] {
		if v, ok := strings.CutPrefix(strings.Trim(e, `"`), "PORTCULLIS_AGENT_ARGS="); ok {
			args = strings.Fields(v)
		}
	}
	if len(args) == 0 {
		t.Fatal("no PORTCULLIS_AGENT_ARGS")
	}
	agentFlagsParse(t, append([]string{"--once"}, args...))
	agentFlagsParse(t, append([]string{"--health", "127.0.0.1:8089"}, args...))
	for _, want := range [][2]string{{"RuntimeDirectoryMode", "0700"}, {"RuntimeDirectoryPreserve", "yes"}, {"UMask", "0077"}, {"NoNewPrivileges", "yes"}, {"ProtectSystem", "strict"}} {
		if v := set[want[0]]; len(v) == 0 || v[len(v)-1] != want[1] {
			t.Errorf("%s: want %s=%s, have %q", unit, want[0], want[1], v)
		}
	}
	if pre := strings.Join(set["ExecStartPre"], " "); !strings.Contains(pre, "agent --once") {
		t.Errorf("%s: ExecStartPre=%s does not write the first token before the unit is up", unit, pre)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze is not installed: the unit was only checked textually")
		return
	}
	dir := t.TempDir() // verify wants ExecStart's binary to exist: a stand-in
	bin := filepath.Join(dir, "portcullis")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "portcullis-agent.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(data), "/usr/local/bin/portcullis", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
	}
}

func TestAgentKubernetesSidecar(t *testing.T) {
	path := filepath.Join("..", "packaging", "kubernetes", "agent-sidecar.yaml")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type container struct {
		Name          string   `yaml:"name"`
		RestartPolicy string   `yaml:"restartPolicy"`
		Args          []string `yaml:"args"`
		StartupProbe  *struct {
			Exec struct {
				Command []string `yaml:"command"`
			} `yaml:"exec"`
		} `yaml:"startupProbe"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			ReadOnly  bool   `yaml:"readOnly"`
		} `yaml:"volumeMounts"`
	}
	var deployment *struct {
		Spec struct {
			Template struct {
				Spec struct {
					SecurityContext struct {
						RunAsUser int `yaml:"runAsUser"`
					} `yaml:"securityContext"`
					InitContainers []container `yaml:"initContainers"`
					Containers     []container `yaml:"containers"`
					Volumes        []struct {
						Name     string `yaml:"name"`
						EmptyDir *struct {
							Medium string `yaml:"medium"`
						} `yaml:"emptyDir"`
					} `yaml:"volumes"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	dec := yaml.NewDecoder(f)
	kinds := map[string]bool{}
	for {
		var node yaml.Node
		if err := dec.Decode(&node); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var head struct {
			Kind string `yaml:"kind"`
		}
		if err := node.Decode(&head); err != nil {
			t.Fatal(err)
		}
		kinds[head.Kind] = true
		if head.Kind == "Deployment" {
			if err := node.Decode(&deployment); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		}
	}
	if deployment == nil || !kinds["ServiceAccount"] || !kinds["ConfigMap"] {
		t.Fatalf("%s: kinds %v, want a Deployment, its ServiceAccount and the CA ConfigMap", path, kinds)
	}
	pod := deployment.Spec.Template.Spec
	if len(pod.InitContainers) != 1 || pod.InitContainers[0].RestartPolicy != "Always" {
		t.Fatalf("%s: the agent must be a native sidecar (an init container with restartPolicy: Always)", path)
	}
	agent := pod.InitContainers[0]
	if len(agent.Args) == 0 || agent.Args[0] != "agent" {
		t.Fatalf("%s: agent args %q", path, agent.Args)
	}
	agentFlagsParse(t, agent.Args[1:])
	if agent.StartupProbe == nil || !strings.Contains(strings.Join(agent.StartupProbe.Exec.Command, " "), "agent check --token-file=/run/portcullis/token") {
		t.Errorf("%s: the startup probe must run agent check on the token file", path)
	}
	if pod.SecurityContext.RunAsUser == 0 {
		t.Errorf("%s: the token files are 0600: run both containers as one non-root user in the pod's securityContext", path)
	}
	memory := false
	for _, v := range pod.Volumes {
		memory = memory || v.Name == "portcullis-run" && v.EmptyDir != nil && v.EmptyDir.Medium == "Memory"
	}
	if !memory {
		t.Errorf("%s: /run/portcullis must be an emptyDir in memory", path)
	}
	for _, c := range pod.Containers {
		for _, m := range c.VolumeMounts {
			if m.Name == "portcullis-run" && !m.ReadOnly {
				t.Errorf("%s: container %s mounts the token files writable", path, c.Name)
			}
		}
	}
}
