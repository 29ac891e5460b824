package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/portcullisdb/portcullis/config"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

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
	}
	root.PersistentFlags().StringP("config", "c", "portcullis.yaml", "path to the configuration file")
	root.AddCommand(serveCmd(), keysCmd(), tokenCmd(), mysqlCmd(), loginCmd(), logoutCmd(), tunnelCmd(), usersCmd(), sessionsCmd(), teamsCmd(), scimCmd(), connectionsCmd(), reloadCmd(), versionCmd())
	root.AddCommand(agentCmd())
	return root
}

func loadConfig(cmd *cobra.Command) (*config.Config, error) {
	path, _ := cmd.Flags().GetString("config")
	cfg, err := config.Load(path)
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

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Run: func(cmd *cobra.Command, _ []string) {
			v := version
			if info, ok := debug.ReadBuildInfo(); ok && v == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
				v = info.Main.Version
			}
			fmt.Fprintln(cmd.OutOrStdout(), "portcullis", v)
		},
	}
}
