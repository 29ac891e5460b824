package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/portcullisdb/portcullis/config"
)

// Build information, set by `make build`:
// -ldflags "-X main.version=v1.2.3 -X main.commit=abc123 -X main.date=2026-12-04T18:00:00Z".
// Without them, what the Go toolchain recorded (module version, VCS
// revision and time) is used.
var (
	version = "dev"
	commit  = ""
	date    = ""
)

// configError marks an invalid configuration, which exits with code 2.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "portcullis",
		Short:         "A MySQL-protocol proxy that takes identity tokens instead of database passwords",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildInfo(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.PersistentFlags().StringP("config", "c", "portcullis.yaml", "path to the configuration file")
	root.AddCommand(serveCmd(), keysCmd(), tokenCmd(), mysqlCmd(), loginCmd(), logoutCmd(), statusCmd(), tunnelCmd(), usersCmd(), sessionsCmd(), teamsCmd(), scimCmd(), connectionsCmd(), reloadCmd(), versionCmd(), manCmd())
	root.AddCommand(certCmd())
	root.AddCommand(tokensCmd())
	root.AddCommand(agentCmd())
	return root
}

func loadConfig(cmd *cobra.Command) (*config.Config, error) {
	path, _ := cmd.Flags().GetString("config")
	cfg, err := config.Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		where := "in this folder"
		if cmd.Flags().Changed("config") {
			where = "at that path"
		}
		return nil, &configError{fmt.Errorf("no config file %s %s: name one with -c FILE. "+
			"examples/portcullis.yaml in the source documents every key (copy it, then edit it), "+
			"and `make run` starts a development setup with examples/dev", path, where)}
	}
	if err != nil {
		return nil, &configError{err}
	}
	return cfg, nil
}

func newLogger(cfg config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// buildInfo is what `portcullis version` prints, one line.
func buildInfo() string {
	v, c, d, modified := version, commit, date, false
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if c == "" {
					c = s.Value
				}
			case "vcs.time":
				if d == "" {
					d = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if len(c) > 12 {
		c = c[:12]
	}
	if c == "" {
		c = "unknown"
	} else if modified && commit == "" {
		c += "-dirty"
	}
	if d == "" {
		d = "unknown"
	}
	return fmt.Sprintf("portcullis %s (commit %s, built %s, %s %s/%s)", v, c, d, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, build date and Go version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), buildInfo())
		},
	}
}
