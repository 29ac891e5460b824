package main

import (
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/portcullisdb/portcullis/client"
)

func loginCmd() *cobra.Command {
	var (
		connection string
		noBrowser  bool
		timeout    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "login [--server URL] [--connection NAME] [--no-browser]",
		Short: "Log in through your company's IdP in the browser; portcullis token, mysql and tunnel then need no password",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			server := serverURL(cmd)
			cache, err := client.DefaultCache()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			res, err := client.Login(ctx, client.LoginOptions{
				Server: server, Connection: connection, NoBrowser: noBrowser, Cache: cache,
				Out: cmd.ErrOrStderr(), In: cmd.InOrStdin(), Timeout: timeout,
			})
			if err != nil {
				return err
			}
			msg := fmt.Sprintf("Logged in to %s as %s", server, res.Entry.Username)
			if res.Connection != "" {
				msg += " (via " + res.Connection + ")"
			}
			if !res.SessionEnds.IsZero() {
				msg += fmt.Sprintf(" until %s; tokens renew on their own until then", res.SessionEnds.Local().Format("Mon 2 Jan 15:04 MST"))
			} else {
				msg += fmt.Sprintf(" until %s (the IdP gave no refresh token: log in again then)", res.Entry.ExpiresAt.Local().Format("Mon 2 Jan 15:04 MST"))
			}
			fmt.Fprintln(cmd.OutOrStdout(), msg)
			return nil
		},
	}
	cmd.Flags().StringVar(&connection, "connection", "", "the IdP connection to log in with (default: the portal's only one)")
	cmd.Flags().BoolVar(&noBrowser, "no-browser", false, "print the URL and read back the code the portal shows (SSH sessions)")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for the login to complete")
	serverFlag(cmd)
	return cmd
}

func logoutCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "logout [--server URL]",
		Short: "Sign out: revoke this login at the portal and forget its tokens",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			server := serverURL(cmd)
			cache, err := client.DefaultCache()
			if err != nil {
				return err
			}
			e, found, err := client.Logout(cmd.Context(), server, cache)
			if err != nil {
				return err
			}
			if !found {
				fmt.Fprintf(cmd.OutOrStdout(), "Not logged in to %s\n", server)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Logged out of %s (%s); an access token already handed out stays valid until %s\n",
				server, e.Username, e.ExpiresAt.Local().Format("15:04 MST"))
			return nil
		},
	}
	serverFlag(cmd)
	return cmd
}
