package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/portcullisdb/portcullis/service"
)

func serveCmd() *cobra.Command {
	var check, insecure bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the proxy",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			if check {
				fmt.Fprintln(cmd.OutOrStdout(), "configuration OK")
				warnings, err := service.CheckAccountPrivileges(cmd.Context(), cfg)
				if err != nil {
					return err
				}
				for _, w := range warnings {
					fmt.Fprintln(cmd.OutOrStdout(), "warning: "+w)
				}
				return nil
			}
			log := newLogger(cfg.Log)
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			path, _ := cmd.Flags().GetString("config")
			svc, err := service.Start(ctx, cfg, service.Options{InsecureNoTLS: insecure, Log: log, ConfigPath: path})
			if err != nil {
				return err
			}
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
		wait:
			for {
				select {
				case <-ctx.Done():
					break wait
				case <-hup:
					svc.ReloadFile(ctx) // logs the outcome; a bad file keeps the running config
				case err := <-svc.Done():
					return fmt.Errorf("proxy stopped: %w", err)
				}
			}
			log.Info("shutting down: draining sessions", "timeout", cfg.Proxy.ShutdownTimeout)
			sctx, cancel := context.WithTimeout(context.Background(), cfg.Proxy.ShutdownTimeout)
			defer cancel()
			if err := svc.Shutdown(sctx); err != nil {
				log.Warn("shutdown", "err", err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&check, "check", false, "validate the configuration and exit")
	cmd.Flags().BoolVar(&insecure, "insecure-no-tls", false, "accept tokens without client TLS (development and benchmarks only)")
	return cmd
}
