package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/portcullisdb/portcullis/client"
)

func agentCmd() *cobra.Command {
	var (
		src               client.Source
		opt               client.AgentOptions
		health, logFormat string
		once              bool
	)
	cmd := &cobra.Command{
		Use:   "agent (--cloud P | --jwt-file F | --login) (--token-file F | --option-file F) [flags]",
		Short: "Keep a fresh token in a file and a MySQL option file for the apps beside it (a sidecar or a systemd unit)",
		Long: `portcullis agent keeps a valid token in a token file and in a MySQL option file
([client] user, password, host, port; TLS on), each mode 0600 and replaced atomically.
It renews the token when a third of its life is left. When renewal fails it logs why,
retries with backoff and keeps the current token until it expires; then it removes the
token file and rewrites the option file without a password and with a comment saying
why. GET /healthz on --health (loopback only) answers 200 while a valid token is in
the files, 503 otherwise; "portcullis agent check" is the same check for exec probes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			src.Server = serverURL(cmd)
			if err := src.Validate(); err != nil {
				return err
			}
			if src.TokenFile != "" {
				return errors.New("the agent writes token files; it does not read one: use --cloud, --jwt-file or --login")
			}
			if health != "" {
				if err := client.CheckLoopback(health); err != nil {
					return err
				}
			}
			var h slog.Handler = slog.NewTextHandler(os.Stderr, nil)
			if logFormat == "json" {
				h = slog.NewJSONHandler(os.Stderr, nil)
			}
			opt.Log = slog.New(h)
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			if opt.Address == "" {
				d, err := client.Discover(ctx, src.Server)
				if err != nil {
					return fmt.Errorf("find the proxy's address (or set --address): %w", err)
				}
				opt.Address = d.MySQLAddress
			}
			agent, err := client.NewAgent(src, opt)
			if err != nil {
				return err
			}
			if once {
				return agent.Once(ctx)
			}
			if health != "" {
				ln, err := net.Listen("tcp", health)
				if err != nil {
					return fmt.Errorf("listen for --health: %w", err)
				}
				srv := &http.Server{Handler: agent.Health(), ReadHeaderTimeout: 5 * time.Second}
				go srv.Serve(ln)
				defer func() {
					sctx, cancel := context.WithTimeout(context.Background(), time.Second)
					defer cancel()
					srv.Shutdown(sctx)
				}()
				opt.Log.Info("health endpoint listening", "addr", ln.Addr().String())
			}
			opt.Log.Info("agent started", "source", src.String(), "token_file", opt.TokenFile, "option_file", opt.OptionFile)
			return agent.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&src.Cloud, "cloud", "", "exchange this cloud identity: aws, azure, gcp or auto")
	f.StringVar(&src.JWTFile, "jwt-file", "", "exchange the JWT in this file, read again at each renewal (e.g. a Kubernetes projected service-account token)")
	f.BoolVar(&src.Login, "login", false, "renew your portcullis login (people's tools; needs a prior portcullis login)")
	f.StringVar(&opt.TokenFile, "token-file", "", "write the token alone to this file")
	f.StringVar(&opt.OptionFile, "option-file", "", "write a MySQL option file here, for mariadb --defaults-extra-file and drivers' read_default_file")
	f.StringVar(&opt.Address, "address", "", "the proxy's host:port for the option file (default: what the portal advertises)")
	f.StringVar(&opt.Role, "role", "", "connect with this role: the option file's user becomes username/role")
	f.StringVar(&opt.CAFile, "ca", "", "PEM file of the CA of the proxy's certificate: the option file then verifies it")
	f.StringVar(&health, "health", "", "serve GET /healthz on this loopback address, e.g. 127.0.0.1:8089")
	f.BoolVar(&once, "once", false, "write the files once and exit (0 with a valid token written, 1 otherwise)")
	f.StringVar(&logFormat, "log-format", "text", "text or json")
	serverFlag(cmd)
	cmd.AddCommand(agentCheckCmd())
	return cmd
}

func agentCheckCmd() *cobra.Command {
	var tokenFile string
	cmd := &cobra.Command{
		Use:   "check --token-file F",
		Short: "Exit 0 if the agent's token file holds a token that has not expired (for exec probes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := client.CheckTokenFile(tokenFile)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: token for %s valid until %s\n", e.Username, e.ExpiresAt.UTC().Format(time.RFC3339))
			return nil
		},
	}
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "the token file the agent writes")
	cmd.MarkFlagRequired("token-file")
	return cmd
}
