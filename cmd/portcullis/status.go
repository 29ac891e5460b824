package main

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/portcullisdb/portcullis/client"
)

// statusReport is `portcullis status --json`; its field names are stable.
type statusReport struct {
	Server       string    `json:"server"`
	ServerSource string    `json:"server_source"` // --server | $PORTCULLIS_SERVER | last login | default
	LoggedIn     bool      `json:"logged_in"`
	Username     string    `json:"username,omitempty"`
	Method       string    `json:"method,omitempty"` // login | aws | azure | gcp
	Connection   string    `json:"connection,omitempty"`
	TokenExpires time.Time `json:"token_expires,omitzero"`
	SessionEnds  time.Time `json:"session_ends,omitzero"` // when `portcullis login` is needed again
	Roles        []string  `json:"roles,omitempty"`
	NextRole     string    `json:"next_role,omitempty"`
	NextRoleNote string    `json:"next_role_error,omitempty"`
	Problem      string    `json:"problem,omitempty"` // the portal could not be asked
}

func statusCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status [--server URL] [--json]",
		Short: "Show who you are logged in as, where, until when, and which role your next connection gets",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := wantJSON(cmd)
			if err != nil {
				return err
			}
			server, source := serverSource(cmd)
			rep := statusReport{Server: server, ServerSource: source}
			cache, err := client.DefaultCache()
			if err != nil {
				return err
			}
			entries, err := cache.Entries(server)
			if err != nil {
				return err
			}
			// The login first, then the entry that lives longest.
			sort.Slice(entries, func(i, j int) bool {
				if (entries[i].Method == client.MethodLogin) != (entries[j].Method == client.MethodLogin) {
					return entries[i].Method == client.MethodLogin
				}
				return entries[i].ExpiresAt.After(entries[j].ExpiresAt)
			})
			if len(entries) > 0 {
				e := entries[0]
				rep.Username, rep.Method, rep.Connection, rep.TokenExpires, rep.SessionEnds = e.Username, e.Method, e.Connection, e.ExpiresAt, e.SessionEnds
			}
			// A token for the portal to judge: refreshed if it must be.
			if e, err := client.Token(cmd.Context(), client.Options{Server: server, Cache: cache}); err == nil {
				rep.LoggedIn, rep.Username, rep.TokenExpires = true, e.Username, e.ExpiresAt
				if who, err := client.AskWhoAmI(cmd.Context(), server, e); err != nil {
					rep.Problem = err.Error()
				} else {
					rep.Roles, rep.NextRole, rep.NextRoleNote = who.Roles, who.DefaultRole, who.DefaultRoleError
				}
			} else if len(entries) > 0 {
				rep.Problem = err.Error()
			}
			if asJSON {
				if err := printJSON(cmd, rep); err != nil {
					return err
				}
			} else {
				printStatus(cmd, rep)
			}
			if !rep.LoggedIn {
				return errors.New("not logged in to " + server + ": run portcullis login --server " + server)
			}
			return nil
		},
	}
	serverFlag(cmd)
	outputFlags(cmd)
	return cmd
}

func printStatus(cmd *cobra.Command, r statusReport) {
	out := cmd.OutOrStdout()
	const when = "Mon 2 Jan 15:04 MST"
	fmt.Fprintf(out, "Server:       %s (from %s)\n", r.Server, r.ServerSource)
	if !r.LoggedIn {
		if r.Problem != "" {
			fmt.Fprintf(out, "Logged in:    no (%s)\n", r.Problem)
		} else {
			fmt.Fprintln(out, "Logged in:    no")
		}
		return
	}
	who := r.Username
	if r.Connection != "" {
		who += " via " + r.Connection
	} else if r.Method != "" && r.Method != client.MethodLogin {
		who += " (" + r.Method + " identity)"
	}
	fmt.Fprintf(out, "Logged in as: %s\n", who)
	fmt.Fprintf(out, "Token:        valid until %s\n", r.TokenExpires.Local().Format(when))
	if !r.SessionEnds.IsZero() {
		fmt.Fprintf(out, "Login ends:   %s (tokens renew on their own until then)\n", r.SessionEnds.Local().Format(when))
	}
	switch {
	case r.Problem != "":
		fmt.Fprintf(out, "Next role:    unknown: %s\n", r.Problem)
	case r.NextRole != "":
		fmt.Fprintf(out, "Next role:    %s (holds: %s; pick another with --role)\n", r.NextRole, strings.Join(r.Roles, ", "))
	default:
		fmt.Fprintf(out, "Next role:    none: %s\n", r.NextRoleNote)
	}
}
