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
				for _, g := range cfg.ExchangeGrants() {
					fmt.Fprintln(cmd.OutOrStdout(), g)
				}
				fmt.Fprintln(cmd.OutOrStdout(), "configuration OK")
				return nil
			}
			log := newLogger(cfg.Log)
			// Signals are read from a channel, not through a context the
			// service runs on: sessions must outlive the first signal, and
			// drain until proxy.shutdown_timeout.
			stopSig := make(chan os.Signal, 2)
			signal.Notify(stopSig, syscall.SIGINT, syscall.SIGTERM)
			defer signal.Stop(stopSig)
			ctx := cmd.Context()
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
				case sig := <-stopSig:
					log.Info("shutting down: draining sessions (a second signal ends them at once)", "signal", sig.String(), "timeout", cfg.Proxy.ShutdownTimeout)
					break wait
				case <-hup:
					svc.ReloadFile(ctx) // logs the outcome; a bad file keeps the running config
				case err := <-svc.Done():
					return fmt.Errorf("proxy stopped: %w", err)
				}
			}
			sctx, cancel := context.WithTimeout(context.Background(), cfg.Proxy.ShutdownTimeout)
			defer cancel()
			go func() {
				select {
				case sig := <-stopSig:
					log.Warn("second signal: ending every session now", "signal", sig.String())
					cancel()
				case <-sctx.Done():
				}
			}()
			if err := svc.Shutdown(sctx); err != nil {
				log.Warn("shutdown: " + err.Error())
			} else {
				log.Info("shutdown: every session finished")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&check, "check", false, "validate the configuration and exit")
	cmd.Flags().BoolVar(&insecure, "insecure-no-tls", false, "accept tokens without client TLS (development and benchmarks only)")
	return cmd
}
